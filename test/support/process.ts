import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../..', import.meta.url));
const nodeBin = path.join(root, 'node_modules/.bin/node');
/** The CLI as installed: it runs the server bundle when that is current, else the sources (src/cli/bundle.ts). */
const cli = path.join(root, 'bin/parley.js');

// A failed assertion must not leave a server running: whatever is still alive when the test file ends is killed.
const live = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of live) child.kill('SIGKILL');
});

/** A fresh temporary PARLEY_DATA_DIR; remove() deletes it. */
export function tempDataDir(): { dir: string; remove(): void } {
  const dir = mkdtempSync(path.join(tmpdir(), 'parley-data-'));
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

/** A port that was free a moment ago (the kernel picks it; we release it for the child). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
  });
}

/**
 * The environment a user would have: PATH and HOME only, plus what the caller
 * passes. Nothing leaks in from the test runner (DATABASE_URL, NODE_OPTIONS, …).
 * One process per instance (on PostgreSQL + Redis the default is one per CPU)
 * unless the caller says otherwise: test/cluster/processes.test.ts runs several.
 */
function cleanEnv(env: Record<string, string>): Record<string, string> {
  return { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? tmpdir(), PROCESSES: '1', ...env };
}

export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Runs `parley <args>` to completion. */
export function runCli(args: string[], env: Record<string, string>, timeoutMs = 60_000): Promise<CliResult> {
  const child = spawn(nodeBin, [cli, ...args], { cwd: root, env: cleanEnv(env), stdio: ['ignore', 'pipe', 'pipe'], timeout: timeoutMs });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => (stdout += d));
  child.stderr.on('data', (d) => (stderr += d));
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
}

export interface ServerProcess {
  url: string;
  child: ChildProcess;
  /** Everything written to stdout so far (pino JSON lines). */
  output(): string;
  /** Resolves with the exit code once the process has exited. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Sends SIGTERM and waits for the exit. */
  stop(): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/**
 * Spawns `parley <command> [args]` on env.PORT or a free port and waits until GET /ready
 * answers 200 — or, for `worker` (no HTTP), until it logs that it started.
 */
export async function startServer(
  env: Record<string, string>,
  command = 'start',
  args: string[] = [],
  /** `node`: another Node binary to run the CLI with; `group`: in a process group of its own, as a terminal runs a command. */
  opts: { node?: string; group?: boolean } = {},
): Promise<ServerProcess> {
  const port = env.PORT ? Number(env.PORT) : await freePort();
  const childEnv = command === 'worker' ? { ...env, LOG_LEVEL: 'info' } : env;
  const child = spawn(opts.node ?? nodeBin, [cli, command, ...args], { cwd: root, env: cleanEnv({ ...childEnv, PORT: String(port) }), stdio: ['ignore', 'pipe', 'pipe'], detached: opts.group });
  live.add(child);
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d) => (stdout += d));
  child.stderr!.on('data', (d) => (stderr += d));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => {
      live.delete(child);
      resolve({ code, signal });
    }),
  );
  const url = `http://127.0.0.1:${port}`;
  const proc: ServerProcess = {
    url,
    child,
    output: () => stdout,
    exited,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      return exited;
    },
  };
  let dead = false;
  void exited.then(() => (dead = true));
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline && !dead) {
    const ok = command === 'worker' ? stdout.includes('"msg":"parley started"') : await fetch(`${url}/ready`).then((r) => r.ok, () => false);
    if (ok) return proc;
    await new Promise((r) => setTimeout(r, 100));
  }
  child.kill('SIGKILL');
  throw new Error(`parley ${command} did not become ready:\n${stderr}\n${stdout.slice(-4000)}`);
}

/** A JSON request over real HTTP. */
export async function call(url: string, method: string, pathname: string, opts: { body?: unknown; token?: string } = {}) {
  const headers: Record<string, string> = {};
  if (opts.token) headers.authorization = `Bearer ${opts.token}`;
  if (opts.body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(url + pathname, { method, headers, body: opts.body === undefined ? undefined : JSON.stringify(opts.body) });
  const text = await res.text();
  return { status: res.status, body: text && (res.headers.get('content-type') ?? '').includes('json') ? JSON.parse(text) : text };
}

/**
 * The environment every process of one test cluster shares: a database, a
 * Redis prefix of its own, one master key, the fake upstreams' settings.
 */
export function clusterEnv(databaseUrl: string, extra: Record<string, string> = {}): Record<string, string> {
  return {
    DATABASE_URL: databaseUrl,
    REDIS_URL: process.env.REDIS_URL!,
    REDIS_PREFIX: `parley:cluster:${randomBytes(6).toString('hex')}:`,
    PARLEY_MASTER_KEY: randomBytes(32).toString('base64'),
    PUBLIC_URL: 'http://parley.test',
    LOG_LEVEL: 'warn',
    DEFAULT_MODEL: 'openai:gpt-4o-mini',
    AI_RETRIES: '0',
    ...extra,
  };
}
