// npm run bench:sandbox — the JavaScript sandbox through POST /v1/sandbox/runs:
// latency from request to result with the pool cold (the first run after
// start forks a worker) and warm, runs per second for a trivial script with
// many clients, and the memory a worker takes while it holds an isolate.
// PGlite; the default pool (SANDBOX_WORKERS=2) unless the environment says otherwise.
import { readFile } from 'node:fs/promises';
import { cpus, loadavg } from 'node:os';
import { startApp, type TestApp } from '../test/support/app.ts';
import { createUser } from '../test/support/factories.ts';

const COLD_SAMPLES = 3;
const WARM_REQUESTS = 300;
const THROUGHPUT_SECONDS = 5;
const CLIENTS = 16;
const TRIVIAL = { code: 'input.a + input.b', input: { a: 1, b: 2 } };

const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)]!;
};
const f = (n: number) => n.toFixed(1);
const workers = process.env.SANDBOX_WORKERS ?? '2';

async function timedRun(t: TestApp, token: string, body: unknown = TRIVIAL): Promise<number> {
  const start = performance.now();
  const res = await t.api('POST', '/v1/sandbox/runs', { token, body });
  if (res.status !== 200 || res.body.status !== 'ok') throw new Error(`run failed: ${res.status} ${res.text}`);
  return performance.now() - start;
}

const rssKb = async (pid: number) => Number(/VmRSS:\s+(\d+)/.exec(await readFile(`/proc/${pid}/status`, 'utf8'))![1]);

console.log(`# bench:sandbox — ${cpus().length} CPUs (${cpus()[0]?.model}), load ${loadavg().map(f).join(' ')}, Node ${process.version}, SANDBOX_WORKERS=${workers}`);

const cold: number[] = [];
for (let i = 0; i < COLD_SAMPLES; i++) {
  const t = await startApp({ worker: false, env: { SANDBOX_WORKERS: workers } });
  const u = await createUser(t);
  cold.push(await timedRun(t, u.accessToken));
  await t.close();
}
console.log(`cold (first run, forks a worker): ${cold.map(f).join(', ')} ms`);

const t = await startApp({ worker: false, env: { SANDBOX_WORKERS: workers, SANDBOX_QUEUE_SIZE: '10000' } });
const u = await createUser(t);
// Every worker started and warm.
await Promise.all(Array.from({ length: Number(workers) * 2 }, () => timedRun(t, u.accessToken)));

const warm: number[] = [];
for (let i = 0; i < WARM_REQUESTS; i++) warm.push(await timedRun(t, u.accessToken));
console.log(`warm, one client: p50 ${f(pct(warm, 50))} ms, p99 ${f(pct(warm, 99))} ms over ${WARM_REQUESTS} runs`);

let done = 0;
const until = performance.now() + THROUGHPUT_SECONDS * 1000;
const latencies: number[] = [];
await Promise.all(
  Array.from({ length: CLIENTS }, async () => {
    while (performance.now() < until) {
      latencies.push(await timedRun(t, u.accessToken));
      done++;
    }
  }),
);
console.log(`throughput, ${CLIENTS} clients: ${f(done / THROUGHPUT_SECONDS)} runs/s; p50 ${f(pct(latencies, 50))} ms, p99 ${f(pct(latencies, 99))} ms`);

// A worker's resident memory idle, then while it holds a 16 MB isolate with a little data in it.
const idle = new Map<number, number>();
for (const { pid } of t.services.sandbox.workers().processes) idle.set(pid, await rssKb(pid));
const holding = t.api('POST', '/v1/sandbox/runs', { token: u.accessToken, body: { code: 'const data = Array.from({ length: 1000 }, (_, i) => ({ i })); await new Promise(() => {})', timeoutMs: 1_000 } });
let before = 0;
let during = 0;
const deadline = performance.now() + 1_500;
while (performance.now() < deadline) {
  const busy = t.services.sandbox.workers().processes.find((p) => p.busy);
  if (busy) {
    before = idle.get(busy.pid) ?? before;
    during = Math.max(during, await rssKb(busy.pid));
  }
  await new Promise((r) => setTimeout(r, 50));
}
await holding;
console.log(`worker RSS idle ${f(before / 1024)} MB; holding one isolate ${f(during / 1024)} MB (+${f((during - before) / 1024)} MB)`);
await t.close();
