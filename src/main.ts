import closeWithGrace from 'close-with-grace';
import { buildApp } from './app.ts';
import { ConfigError, loadConfig, type Config } from './config.ts';
import { AppError } from './errors.ts';
import { createDeps, type Deps } from './deps.ts';
import { adminCommand } from './cli/admin.ts';
import { defineWork, startWorker } from './worker.ts';
import { createServices, stopServices } from './services.ts';

const USAGE = `Usage: parley <command>

Commands:
  start                 HTTP API and background work in one process (default)
  serve                 HTTP API only
  worker                background work only
  migrate               apply database migrations and exit
  admin create-user --email <email> [--password <pw>] [--name <name>] [--admin]
  admin rotate-jwt-key  start signing access tokens with a new key
`;

async function main(argv: string[]): Promise<number> {
  const [command = 'start', ...rest] = argv;
  if (command === 'help' || command === '--help' || command === '-h') {
    process.stdout.write(USAGE);
    return 0;
  }
  let config: Config;
  try {
    config = loadConfig(process.env);
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`${err.message}\n`);
      return 78; // EX_CONFIG
    }
    throw err;
  }

  switch (command) {
    case 'start':
    case 'serve':
    case 'worker':
      await run(config, { http: command !== 'worker', worker: command !== 'serve' });
      return -1; // keeps running until a signal
    case 'migrate': {
      const deps = await createDeps(config, { migrate: false });
      await deps.database.migrate();
      deps.logger.info({ database: deps.database.kind }, 'migrations applied');
      await deps.close();
      return 0;
    }
    case 'admin': {
      const deps = await createDeps(config);
      try {
        return await adminCommand(deps, rest);
      } finally {
        await deps.close();
      }
    }
    default:
      process.stderr.write(`Unknown command "${command}"\n\n${USAGE}`);
      return 64; // EX_USAGE
  }
}

async function run(config: Config, roles: { http: boolean; worker: boolean }): Promise<void> {
  const deps: Deps = await createDeps(config);
  const services = createServices(deps);
  defineWork(deps, services);
  const app = roles.http ? await buildApp(deps, services) : undefined;
  const worker = roles.worker ? await startWorker(deps) : undefined;
  if (app) await app.listen({ port: config.port, host: config.host });
  deps.logger.info(
    { database: deps.database.kind, redis: Boolean(deps.redis), http: roles.http, worker: roles.worker, dataDir: deps.database.kind === 'pglite' ? config.dataDir : undefined },
    'parley started',
  );
  closeWithGrace({ delay: 10_000, logger: deps.logger }, async ({ signal, err }) => {
    if (err) deps.logger.error({ err }, 'shutting down after an error');
    else deps.logger.info({ signal }, 'shutting down');
    // Stop accepting, let in-flight requests finish, then release the database.
    await app?.close();
    await worker?.stop();
    // Without HTTP there is no app whose close writes the pending usage events.
    if (!app) await stopServices(services);
    await deps.close();
  });
}

main(process.argv.slice(2)).then(
  (code) => {
    if (code >= 0) process.exitCode = code;
  },
  (err) => {
    // A refused input (taken email, weak password) is a message for the operator, not a crash.
    process.stderr.write(err instanceof AppError ? `${err.message}\n` : `${(err as Error).stack ?? err}\n`);
    process.exit(1);
  },
);
