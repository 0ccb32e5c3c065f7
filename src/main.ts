import cluster from 'node:cluster';
import closeWithGrace from 'close-with-grace';
import { Gauge } from 'prom-client';
import { buildApp } from './app.ts';
import { ConfigError, loadConfig, type Config } from './config.ts';
import { AppError, OperatorError } from './errors.ts';
import { createDeps, type Deps } from './deps.ts';
import { ADMIN_USAGE, adminCommand, parseAdminArgs, type AdminTask } from './cli/admin.ts';
import { defineWork, startWorker } from './worker.ts';
import { createServices, stopServices } from './services.ts';
import { offerMetrics } from './platform/observability/cluster-metrics.ts';
import { createLogger } from './platform/observability/logger.ts';
import { followPrimary, parseRunOptions, planProcesses, runPrimary, UsageError } from './processes.ts';

const USAGE = `Usage: parley <command>

Commands:
  start                 HTTP API and background work (the default command)
  serve                 HTTP API only
  worker                background work only
  migrate               apply database migrations and exit
  admin create-user --email <email> [--password <pw>] [--name <name>] [--admin]
  admin rotate-jwt-key  start signing access tokens with a new key

Options of start, serve and worker:
  --processes N         run N copies behind one port (Node's cluster module);
                        default PROCESSES, else one per CPU. More than one needs
                        DATABASE_URL and REDIS_URL: embedded runs one process.
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
    case 'worker': {
      const roles = { http: command !== 'worker', worker: command !== 'serve' };
      // A forked worker runs the role itself; only the first process decides how many there are.
      if (cluster.isWorker) return run(config, roles);
      let plan: ReturnType<typeof planProcesses>;
      try {
        plan = planProcesses(config, parseRunOptions(rest).processes);
      } catch (err) {
        if (err instanceof UsageError) {
          process.stderr.write(`${err.message}\n\n${USAGE}`);
          return 64; // EX_USAGE
        }
        if (err instanceof ConfigError) {
          process.stderr.write(`${err.message}\n`);
          return 78;
        }
        throw err;
      }
      if (plan.count === 1) return run(config, roles, plan.note);
      const logger = createLogger(config.logLevel);
      logger.info(
        { command, processes: plan.count, databaseConnections: plan.count * config.databasePoolSize, port: roles.http ? config.port : undefined },
        'parley primary started: forking workers',
      );
      return runPrimary({ count: plan.count, logger });
    }
    case 'migrate': {
      if (rest.length) {
        process.stderr.write(`migrate takes no arguments (got ${rest.join(' ')})\n\n${USAGE}`);
        return 64; // EX_USAGE
      }
      const deps = await createDeps(config, { migrate: false });
      await deps.database.migrate();
      deps.logger.info({ database: deps.database.kind }, 'migrations applied');
      await deps.close();
      return 0;
    }
    case 'admin': {
      let task: AdminTask;
      try {
        task = parseAdminArgs(rest);
      } catch (err) {
        if (!(err instanceof UsageError)) throw err;
        process.stderr.write(`${err.message}\n\n${ADMIN_USAGE}`);
        return 64; // EX_USAGE
      }
      if (task.task === 'help') {
        process.stdout.write(ADMIN_USAGE);
        return 0;
      }
      const deps = await createDeps(config);
      try {
        return await adminCommand(deps, task);
      } finally {
        await deps.close();
      }
    }
    default:
      process.stderr.write(`Unknown command "${command}"\n\n${USAGE}`);
      return 64; // EX_USAGE
  }
}

/** Runs one process of the role until a signal; resolves -1 (the process exits from close-with-grace). */
async function run(config: Config, roles: { http: boolean; worker: boolean }, note?: string): Promise<number> {
  const deps: Deps = await createDeps(config);
  // Which process is which in a scrape: with --processes N the primary gathers every worker's registry.
  new Gauge({ name: 'parley_process_info', help: 'This process (value 1), by pid', labelNames: ['pid'], registers: [deps.metrics.registry] }).set({ pid: String(process.pid) }, 1);
  offerMetrics(deps.metrics.registry);
  const services = createServices(deps);
  defineWork(deps, services);
  const app = roles.http ? await buildApp(deps, services) : undefined;
  const worker = roles.worker ? await startWorker(deps) : undefined;
  if (app) await app.listen({ port: config.port, host: config.host });
  deps.logger.info(
    {
      database: deps.database.kind,
      redis: Boolean(deps.redis),
      http: roles.http,
      worker: roles.worker,
      dataDir: deps.database.kind === 'pglite' ? config.dataDir : undefined,
      // bin/parley.js runs the server bundle when it is current (src/cli/bundle.ts).
      from: process.env.PARLEY_RUNS_FROM ?? 'sources',
    },
    'parley started',
  );
  if (note) deps.logger.info({ processes: 1 }, note);
  let closing = false;
  // In a cluster worker a signal can come on top of the primary's request (a terminal's Ctrl-C reaches both): not a reason
  // to quit at once. An operator's second signal reaches the primary, which then kills the workers itself.
  const onSecondSignal = cluster.isWorker ? (signal: string) => deps.logger.info({ signal }, 'already draining') : undefined;
  const grace = closeWithGrace({ delay: 10_000, logger: deps.logger, onSecondSignal }, async ({ signal, err }) => {
    closing = true;
    if (err) deps.logger.error({ err }, 'shutting down after an error');
    else deps.logger.info({ signal: signal ?? 'asked by the primary' }, 'shutting down');
    // Stop accepting, let in-flight requests finish, then release the database.
    await app?.close();
    await worker?.stop();
    // Without HTTP there is no app whose close writes the pending usage events.
    if (!app) await stopServices(services);
    await deps.close();
  });
  // The primary asks over IPC: a signal from it would be the second one for a worker that a terminal's Ctrl-C already reached.
  followPrimary(() => closing || grace.close());
  return -1;
}

main(process.argv.slice(2)).then(
  (code) => {
    if (code >= 0) process.exitCode = code;
  },
  (err) => {
    // A refused input (taken email, weak password) or a situation to put right is a message for the operator, not a crash.
    const told = err instanceof AppError || err instanceof OperatorError || err instanceof ConfigError;
    process.stderr.write(told ? `${err.message}\n` : `${(err as Error).stack ?? err}\n`);
    process.exit(err instanceof ConfigError ? 78 : 1);
  },
);
