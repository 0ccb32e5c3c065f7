// npm run bench:embedded — the embedded default's figures as an operator meets
// them: `parley start` run as its own process on a new data directory (first
// start: initdb, migrations) and again on the same one (second start), the time
// from spawn to GET /ready → 200, its idle RSS, and the time to first token of
// 50 concurrent streams through its OpenAI-compatible gateway. With
// DATABASE_URL and REDIS_URL set, the same on PostgreSQL + Redis beside it.
// A fake OpenAI upstream and the load client run in processes of their own.
// BENCH_EMBEDDED_NODE_FLAGS: the node flags of the Parley processes (default: those of `npm start`).
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import path from 'node:path';
import type { Script } from '../test/support/fake-openai.ts';
import type { StreamResult, SteadyJob } from './gateway-client.ts';
import { freshPostgresDatabase } from '../test/support/app.ts';
import { ask, child, pct, procCpuMs } from './ipc.ts';

const STREAMS = 50;
const SECONDS = Number(process.env.BENCH_EMBEDDED_SECONDS ?? 10);
const IDLE_MS = 10_000;
const CHUNK_MS = 50;
/** What `npm start` runs: the server bundle when it is current, else the sources (src/cli/bundle.ts). */
const main = new URL('../bin/parley.js', import.meta.url).pathname;
/** The node flags `npm start` runs Parley with (package.json), unless BENCH_EMBEDDED_NODE_FLAGS says otherwise ('' for none). */
const startFlags = (): string[] => {
  const start: string = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')).scripts.start;
  return start.split(' ').filter((word) => word.startsWith('--'));
};
const flags = process.env.BENCH_EMBEDDED_NODE_FLAGS === undefined ? startFlags() : process.env.BENCH_EMBEDDED_NODE_FLAGS.split(' ').filter(Boolean);

function descendantsOf(pid: number): number[] {
  let kids: number[] = [];
  try {
    for (const task of readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number)) kids = [...kids, task, ...descendantsOf(task)];
  } catch {}
  return kids;
}

/** VmRSS and VmHWM of a process, and the RSS of its descendants (cluster workers on PostgreSQL + Redis, the sandbox pool's workers), in MB. */
function memoryOf(pid: number): { rss: number; hwm: number; children: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (key: string) => Number(status.match(new RegExp(`${key}:\\s+(\\d+)`))?.[1] ?? 0);
  const children = descendantsOf(pid).reduce((sum, p) => {
    try {
      return sum + Number(readFileSync(`/proc/${p}/status`, 'utf8').match(/VmRSS:\s+(\d+)/)?.[1] ?? 0);
    } catch {
      return sum;
    }
  }, 0);
  return { rss: kb('VmRSS') / 1024, hwm: kb('VmHWM') / 1024, children: children / 1024 };
}

/** CPU time (user + system) a process and its live descendants (cluster workers, sandbox workers) have used so far, in ms, from their own accounting. */
function cpuMsOf(pid: number): number {
  let ms = 0;
  for (const p of [pid, ...descendantsOf(pid)]) {
    try {
      ms += procCpuMs(p);
    } catch {
      // Gone meanwhile.
    }
  }
  return ms;
}

interface Running {
  proc: ChildProcess;
  url: string;
  readyMs: number;
  stop(): Promise<void>;
}

const { DATABASE_URL: _db, REDIS_URL: _redis, ...inherited } = process.env;

async function startParley(env: Record<string, string>, port: number): Promise<Running> {
  const t0 = performance.now();
  const proc = spawn(process.execPath, [...flags, main, 'start'], {
    // Only what the setup names: the bench's own DATABASE_URL/REDIS_URL must not reach the embedded run.
    env: { ...inherited, ...env, PORT: String(port), HOST: '127.0.0.1', LOG_LEVEL: 'warn' },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  const url = `http://127.0.0.1:${port}`;
  let exited = false;
  proc.once('exit', () => (exited = true));
  for (;;) {
    if (exited) throw new Error('parley exited before it was ready');
    const ok = await fetch(`${url}/ready`).then((r) => r.status === 200, () => false);
    if (ok) break;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  const readyMs = performance.now() - t0;
  return {
    proc,
    url,
    readyMs,
    stop: () =>
      new Promise((resolve) => {
        if (exited) return resolve();
        proc.once('exit', () => resolve());
        proc.kill('SIGTERM');
      }),
  };
}

async function apiKey(url: string): Promise<string> {
  const post = async (p: string, body: unknown, token?: string) => {
    const res = await fetch(`${url}${p}`, { method: 'POST', headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) }, body: JSON.stringify(body) });
    if (!res.ok) throw new Error(`${p}: ${res.status} ${await res.text()}`);
    return res.json() as Promise<any>;
  };
  const reg = await post('/v1/auth/register', { email: `bench-${Date.now()}@example.com`, password: 'bench password 123' });
  return (await post('/v1/api-keys', { name: 'bench' }, reg.accessToken)).key;
}

interface Figures {
  first: number;
  second: number;
  idle: { rss: number; hwm: number; children: number };
  /** CPU over the idle window, as a share of one core. */
  idleCpu: number;
  /** CPU over the streams' run, as a share of one core. */
  loadCpu: number;
  ttft: StreamResult;
}

async function measure(name: string, env: Record<string, string>, port: number, client: ChildProcess): Promise<Figures> {
  const dataDir = mkdtempSync(path.join(tmpdir(), 'parley-bench-embedded-'));
  // On PostgreSQL: a database of its own (the first start migrates it), its own Redis keys and master key.
  const database = env.DATABASE_URL ? await freshPostgresDatabase() : undefined;
  const fullEnv = {
    ...env,
    PARLEY_DATA_DIR: dataDir,
    ...(database ? { DATABASE_URL: database.url, REDIS_PREFIX: `parley-bench-${randomBytes(4).toString('hex')}:`, PARLEY_MASTER_KEY: randomBytes(32).toString('base64') } : {}),
  };
  try {
    process.stderr.write(`  ${name}: first start…\n`);
    const a = await startParley(fullEnv, port);
    await a.stop();
    process.stderr.write(`  ${name}: second start, idle…\n`);
    const b = await startParley(fullEnv, port);
    try {
      const idleFrom = cpuMsOf(b.proc.pid!);
      await new Promise((resolve) => setTimeout(resolve, IDLE_MS));
      const idleCpu = (cpuMsOf(b.proc.pid!) - idleFrom) / IDLE_MS;
      const idle = memoryOf(b.proc.pid!);
      const secret = await apiKey(b.url);
      process.stderr.write(`  ${name}: ${STREAMS} streams for ${SECONDS} s…\n`);
      const body = JSON.stringify({ model: 'openai:gpt-4o-mini', messages: [{ role: 'user', content: 'Say hello.' }], stream: true, stream_options: { include_usage: true } });
      const probe = await fetch(`${b.url}/v1/chat/completions`, { method: 'POST', headers: { authorization: `Bearer ${secret}`, 'content-type': 'application/json' }, body });
      const probeText = await probe.text();
      if (probe.status !== 200 || !probeText.includes('"content":"')) throw new Error(`a stream through ${name} failed: ${probe.status} ${probeText.slice(0, 300)}`);
      const job = { kind: 'steady', url: `${b.url}/v1/chat/completions`, headers: { authorization: `Bearer ${secret}` }, body, concurrency: STREAMS, rampMs: 20 * CHUNK_MS, seconds: SECONDS } satisfies SteadyJob;
      const loadFrom = cpuMsOf(b.proc.pid!);
      const loadStart = performance.now();
      const ttft = (await ask<{ streams: StreamResult }>(client, job)).streams;
      const loadCpu = (cpuMsOf(b.proc.pid!) - loadFrom) / (performance.now() - loadStart);
      return { first: a.readyMs, second: b.readyMs, idle, idleCpu, loadCpu, ttft };
    } finally {
      await b.stop();
    }
  } finally {
    rmSync(dataDir, { recursive: true, force: true });
    await database?.drop();
  }
}

async function run() {
  const upstream = await child(new URL('./upstream.ts', import.meta.url));
  const client = await child(new URL('./gateway-client.ts', import.meta.url));
  const upstreamUrl: string = upstream.first.url;
  await ask(upstream.proc, { defaults: { reply: Array.from({ length: 20 }, (_, i) => `word${i}`).join(' '), delayMs: CHUNK_MS } satisfies Script });
  const env = {
    OPENAI_API_KEY: 'sk-bench',
    OPENAI_BASE_URL: `${upstreamUrl}/v1`,
    DEFAULT_MODEL: 'openai:gpt-4o-mini',
    AUTH_RATE_LIMIT_PER_IP: '1000000000',
    RATE_LIMIT_ENABLED: 'false', // one key's thousands of requests a minute are the load, not abuse
  };
  const sorted = (xs: number[]) => [...xs].sort((a, b) => a - b);
  const f = (n: number | undefined, d = 0) => (n === undefined || !Number.isFinite(n) ? '–' : n.toFixed(d));
  try {
    process.stderr.write('  direct to the upstream…\n');
    const directJob = { kind: 'steady', url: `${upstreamUrl}/v1/chat/completions`, headers: { authorization: 'Bearer sk-bench' }, body: JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'Say hello.' }], stream: true }), concurrency: STREAMS, rampMs: 20 * CHUNK_MS, seconds: SECONDS } satisfies SteadyJob;
    const direct = (await ask<{ streams: StreamResult }>(client.proc, directJob)).streams;
    const setups: [string, Record<string, string>][] = [['embedded (PGlite, in-process adapters)', env]];
    if (process.env.DATABASE_URL && process.env.REDIS_URL) setups.push(['PostgreSQL + Redis', { ...env, DATABASE_URL: process.env.DATABASE_URL, REDIS_URL: process.env.REDIS_URL }]);
    const rows: string[] = [];
    let port = 39_000 + Math.floor(Math.random() * 1000);
    const d = sorted(direct.ttft);
    for (const [name, setupEnv] of setups) {
      const r = await measure(name, setupEnv, port++, client.proc);
      const t = sorted(r.ttft.ttft);
      rows.push(`| ${name} | ${f(r.first)} | ${f(r.second)} | ${f(r.idle.rss)} | ${f(r.idle.hwm)} | ${f(r.idle.children)} | ${f(r.idleCpu * 100, 1)} | ${t.length} | ${f(r.loadCpu * 100, 0)} | ${f(pct(t, 50), 1)} | ${f(pct(t, 99), 1)} | ${f(pct(t, 50) - pct(d, 50), 1)} | ${f(pct(t, 99) - pct(d, 99), 1)} | ${r.ttft.failed} |`);
    }
    const out = [
      `Parley embedded bench — Node ${process.version}, ${cpus().length} × ${cpus()[0]?.model.trim()}, load average ${loadavg()[0]!.toFixed(1)} at the end${flags.length ? `, node flags ${flags.join(' ')}` : ''}`,
      '',
      `| setup | first start to ready ms | second start ms | idle RSS MB | peak RSS MB | child processes' RSS MB | idle CPU % | streams | CPU % under load | TTFT p50 ms | p99 ms | added p50 ms | added p99 ms | failed |`,
      '|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|',
      `| direct to the upstream | | | | | | | ${d.length} | | ${f(pct(d, 50), 1)} | ${f(pct(d, 99), 1)} | | | ${direct.failed} |`,
      ...rows,
      '',
      `${STREAMS} streams held open for ${SECONDS} s (each replaced as it ends; TTFT of those opened after the 1 s ramp); upstream: 20 chunks, one every ${CHUNK_MS} ms. Idle RSS read ${IDLE_MS / 1000} s after ready, idle CPU over those ${IDLE_MS / 1000} s (share of one core); CPU under load: Parley's user + system time over the streams' run, also as a share of one core, children included. On PostgreSQL + Redis \`parley start\` runs one worker process per CPU (its default): idle RSS is the primary's, the workers' is beside it.`,
    ];
    process.stdout.write(`${out.join('\n')}\n`);
  } finally {
    upstream.proc.kill();
    client.proc.kill();
  }
}

await run();
