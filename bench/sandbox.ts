// npm run bench:sandbox — the JavaScript sandbox through POST /v1/sandbox/runs:
// latency from request to result with the pool cold (the first run after
// start forks a worker) and warm, runs per second for a trivial script with
// many clients, and the memory a worker takes while it holds an isolate.
// Then what the tool loop adds to a chat turn: turns that call `current_time`
// once against an instant fake OpenAI, interleaved with plain turns.
// PGlite, or PostgreSQL + Redis when DATABASE_URL/REDIS_URL are set; the
// default pool (SANDBOX_WORKERS=2) unless the environment says otherwise.
import { readFile } from 'node:fs/promises';
import { cpus, loadavg } from 'node:os';
import { startApp, type Backend, type TestApp } from '../test/support/app.ts';
import { createUser, type TestUser } from '../test/support/factories.ts';
import { startFakeOpenAI } from '../test/support/fake-openai.ts';

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
const backend: Backend = process.env.DATABASE_URL ? 'postgres' : 'embedded';

async function timedRun(t: TestApp, token: string, body: unknown = TRIVIAL): Promise<number> {
  const start = performance.now();
  const res = await t.api('POST', '/v1/sandbox/runs', { token, body });
  if (res.status !== 200 || res.body.status !== 'ok') throw new Error(`run failed: ${res.status} ${res.text}`);
  return performance.now() - start;
}

const rssKb = async (pid: number) => Number(/VmRSS:\s+(\d+)/.exec(await readFile(`/proc/${pid}/status`, 'utf8'))![1]);

console.log(
  `# bench:sandbox — ${cpus().length} CPUs (${cpus()[0]?.model}), load ${loadavg().map(f).join(' ')}, Node ${process.version}, ` +
    `${backend === 'postgres' ? 'PostgreSQL + Redis' : 'PGlite'}, SANDBOX_WORKERS=${workers}`,
);

const cold: number[] = [];
for (let i = 0; i < COLD_SAMPLES; i++) {
  const t = await startApp({ backend, worker: false, env: { SANDBOX_WORKERS: workers } });
  const u = await createUser(t);
  cold.push(await timedRun(t, u.accessToken));
  await t.close();
}
console.log(`cold (first run, forks a worker): ${cold.map(f).join(', ')} ms`);

// One user sends every run here: their share of the queue (SANDBOX_MAX_RUNS_PER_USER) is all of it.
const t = await startApp({ backend, worker: false, env: { SANDBOX_WORKERS: workers, SANDBOX_QUEUE_SIZE: '10000', SANDBOX_MAX_RUNS_PER_USER: '10000' } });
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

// A chat turn with one `current_time` call, against a plain turn. The fake
// OpenAI answers at once, so the difference is Parley's own: one more model
// call, the tool run, one step's writes (the model's call and the tool
// message). Each turn is the first of a fresh conversation (made outside the
// timing, titled so no title is generated), so history never grows. Plain and
// tool turns alternate so that noise from other work on the machine falls on
// both alike. The app, the fake upstream and the HTTP client share this process
// (and PGlite too, when embedded), so CPU per turn counts all four; it is
// read over each turn and the settling of its background work, since
// generation.idle() waits for what hangs off an answer.
const TURNS = 200;
const WARMUP_TURNS = 20;
const openai = await startFakeOpenAI();
openai.state.defaults = { reply: 'Done.' };
const c = await startApp({ backend, env: { ...openai.env, DEFAULT_MODEL: 'openai:gpt-4o-mini', AI_RETRIES: '0', SANDBOX_WORKERS: workers } });
const cu = await createUser(c);

async function project(user: TestUser, body: Record<string, unknown>): Promise<string> {
  const res = await c.api('POST', '/v1/projects', { token: user.accessToken, body: { name: 'Bench', ...body } });
  if (res.status !== 201) throw new Error(`project: ${res.status} ${res.text}`);
  return res.body.id;
}
const plainProject = await project(cu, {});
const toolProject = await project(cu, { tools: ['current_time'] });

interface Turn {
  ms: number;
  cpuUs: number;
  conversationId: string;
}

async function turn(projectId: string, withTool: boolean): Promise<Turn> {
  const conv = await c.api('POST', '/v1/conversations', { token: cu.accessToken, body: { title: 'Bench', projectId } });
  if (conv.status !== 201) throw new Error(`conversation: ${conv.status} ${conv.text}`);
  const requestsBefore = openai.requests.length;
  if (withTool) openai.script({ toolCalls: [{ name: 'current_time', arguments: '{}' }] }, { reply: 'Done.' });
  const cpu = process.cpuUsage();
  const start = performance.now();
  const res = await c.api('POST', `/v1/conversations/${conv.body.id}/messages`, { token: cu.accessToken, body: { content: 'What time is it?' } });
  const ms = performance.now() - start;
  await c.services.generation.idle();
  const used = process.cpuUsage(cpu);
  if (res.status !== 201 || res.body.status !== 'complete') throw new Error(`turn: ${res.status} ${res.text}`);
  const calls = openai.requests.length - requestsBefore;
  if (calls !== (withTool ? 2 : 1)) throw new Error(`turn made ${calls} upstream calls`);
  openai.requests.length = 0;
  return { ms, cpuUs: used.user + used.system, conversationId: conv.body.id };
}

for (let i = 0; i < WARMUP_TURNS; i++) await turn(i % 2 ? toolProject : plainProject, i % 2 === 1);
const plain: Turn[] = [];
const tool: Turn[] = [];
for (let i = 0; i < TURNS; i++) {
  plain.push(await turn(plainProject, false));
  tool.push(await turn(toolProject, true));
}

// Once: the tool turn stored question → the model's call → the tool's result → the answer.
const branch = (await c.api('GET', `/v1/conversations/${tool[0]!.conversationId}/messages`, { token: cu.accessToken })).body.data;
const roles = branch.map((m: { role: string }) => m.role).join(' → ');
const result = branch.find((m: { role: string }) => m.role === 'tool')?.content[0];
if (roles !== 'user → assistant → tool → assistant' || result?.name !== 'current_time' || result?.status !== 'ok') {
  throw new Error(`tool turn stored ${roles}, result ${JSON.stringify(result)}`);
}

const summary = (turns: Turn[]) => {
  const ms = turns.map((x) => x.ms);
  return { p50: pct(ms, 50), p99: pct(ms, 99), cpuMs: turns.reduce((a, x) => a + x.cpuUs, 0) / turns.length / 1000 };
};
const a = summary(plain);
const b = summary(tool);
console.log(`chat turn, JSON mode, ${TURNS} of each interleaved (after ${WARMUP_TURNS} warm-up), load ${loadavg().map(f).join(' ')} at the end:`);
console.log(`  plain turn:             p50 ${f(a.p50)} ms, p99 ${f(a.p99)} ms; CPU ${f(a.cpuMs)} ms/turn`);
console.log(`  one current_time call:  p50 ${f(b.p50)} ms, p99 ${f(b.p99)} ms; CPU ${f(b.cpuMs)} ms/turn`);
// Each tool turn against the plain turn just before it: the median of those differences is steadier than a difference of medians.
const paired = tool.map((x, i) => x.ms - plain[i]!.ms);
const signed = (n: number) => `${n < 0 ? '−' : '+'}${f(Math.abs(n))}`;
console.log(`  added by the tool loop: p50 ${signed(b.p50 - a.p50)} ms, p99 ${signed(b.p99 - a.p99)} ms; CPU ${signed(b.cpuMs - a.cpuMs)} ms/turn; median of pairs ${signed(pct(paired, 50))} ms`);
await c.close();
await openai.close();
