// npm run bench:gateway:processes — the gateway's non-streaming req/s with
// `parley serve --processes 1` and `--processes N` (N: the machine's CPUs), each
// a real subprocess on PostgreSQL + Redis (DATABASE_URL, REDIS_URL), against a
// fake OpenAI upstream in a process of its own, driven by the same autocannon
// load client as bench:gateway. Also run at the end of bench:gateway.
import { fork } from 'node:child_process';
import { get } from 'node:http';
import { availableParallelism, cpus, loadavg } from 'node:os';
import { freshPostgresDatabase } from '../test/support/app.ts';
import { call, clusterEnv, startServer } from '../test/support/process.ts';
import { runScenario } from './load.ts';

/**
 * Request and token limits on, as deployed (the test app turns them off), but
 * far above what the bench sends, for users and administrators: every request
 * is counted in Redis (or in memory on PGlite) and none is refused.
 */
export const COUNTED_LIMITS = {
  RATE_LIMIT_ENABLED: 'true',
  RATE_LIMIT_USER_RPM: '1000000000',
  RATE_LIMIT_KEY_RPM: '1000000000',
  RATE_LIMIT_IP_RPM: '1000000000',
  RATE_LIMIT_USER_TPM: '1000000000000',
  RATE_LIMIT_KEY_TPM: '1000000000000',
  RATE_LIMIT_ADMIN_USER_RPM: '1000000000',
  RATE_LIMIT_ADMIN_KEY_RPM: '1000000000',
  RATE_LIMIT_ADMIN_IP_RPM: '1000000000',
  RATE_LIMIT_ADMIN_USER_TPM: '1000000000000',
  RATE_LIMIT_ADMIN_KEY_TPM: '1000000000000',
};

const SECONDS = Number(process.env.PROCESSES_BENCH_SECONDS ?? 6);
const CONNECTIONS = 32;

export interface ProcessesRow {
  processes: number;
  /** CPUs this machine offers Node (os.availableParallelism()). */
  cores: number;
  rps: number;
  p50: number;
  p99: number;
  failed: number;
}

/**
 * Measures 1 and N processes (`counts` to choose others); `table` is the
 * markdown to print. Without PostgreSQL and Redis there is nothing to measure
 * (the embedded database runs one process): `table` says so.
 */
export async function gatewayByProcesses(counts = [1, availableParallelism()]): Promise<{ rows: ProcessesRow[]; table: string[] }> {
  const cores = availableParallelism();
  const title = `### Processes: \`parley serve --processes N\`, non-streaming, ${CONNECTIONS} connections, ${SECONDS} s`;
  if (!process.env.DATABASE_URL || !process.env.REDIS_URL) return { rows: [], table: [title, '', 'Skipped: needs DATABASE_URL and REDIS_URL (several processes need PostgreSQL and Redis).', ''] };
  const upstream = fork(new URL('./upstream.ts', import.meta.url), { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const ask = (msg?: unknown) =>
    new Promise<any>((resolve, reject) => {
      upstream.once('message', resolve);
      upstream.once('error', reject);
      if (msg) upstream.send(msg as never);
    });
  const rows: ProcessesRow[] = [];
  try {
    const { url: upstreamUrl } = await ask();
    await ask({ defaults: { reply: 'Hello there, how can I help?' } });
    for (const processes of [...new Set(counts)]) {
      process.stderr.write(`  gateway with --processes ${processes}…\n`);
      rows.push({ processes, cores, ...(await measure(processes, upstreamUrl)) });
    }
  } finally {
    upstream.kill();
  }
  const table = [
    title,
    '',
    `${cpus()[0]?.model.trim()}, load average ${loadavg()[0]!.toFixed(1)} at the end; the load client and the upstream share these cores with Parley.`,
    '',
    '| processes | cores | req/s | p50 ms | p99 ms | failed |',
    '|--:|--:|--:|--:|--:|--:|',
    ...rows.map((r) => `| ${r.processes} | ${r.cores} | ${r.rps.toFixed(0)} | ${r.p50} | ${r.p99} | ${r.failed} |`),
    '',
  ];
  return { rows, table };
}

async function measure(processes: number, upstreamUrl: string) {
  const db = await freshPostgresDatabase();
  const env = clusterEnv(db.url, {
    OPENAI_API_KEY: 'sk-bench',
    OPENAI_BASE_URL: `${upstreamUrl}/v1`,
    AUTH_RATE_LIMIT_PER_IP: '1000000000',
    ...COUNTED_LIMITS,
    PROCESSES: '',
  });
  const server = await startServer(env, 'serve', ['--processes', String(processes)]);
  try {
    await allWorkersUp(server.url, processes);
    const reg = await call(server.url, 'POST', '/v1/auth/register', { body: { email: `bench-${Date.now()}@example.com`, password: 'bench password 123' } });
    const key = await call(server.url, 'POST', '/v1/api-keys', { token: reg.body.accessToken, body: { name: 'bench', scopes: ['chat'] } });
    if (key.status !== 201) throw new Error(`API key: ${key.status} ${JSON.stringify(key.body)}`);
    const scenario = {
      url: server.url,
      method: 'POST' as const,
      path: '/v1/chat/completions',
      connections: CONNECTIONS,
      headers: { authorization: `Bearer ${key.body.key}` },
      body: JSON.stringify({ model: 'openai:gpt-4o-mini', messages: [{ role: 'user', content: 'Say hello.' }] }),
    };
    await runScenario({ ...scenario, durationSeconds: 2 }); // warm-up: JIT, connection pools
    const r = await runScenario({ ...scenario, durationSeconds: SECONDS });
    return { rps: r.rps, p50: r.p50, p99: r.p99, failed: r.failed };
  } finally {
    await server.stop();
    await db.drop();
  }
}

/** Waits until `count` different processes have answered (the first answers /ready before the others have started). */
async function allWorkersUp(url: string, count: number) {
  const pids = new Set<string>();
  const deadline = Date.now() + 120_000;
  while (pids.size < count) {
    if (Date.now() > deadline) throw new Error(`only ${pids.size} of ${count} processes answered`);
    const text = await new Promise<string>((resolve, reject) => {
      get(`${url}/metrics`, { agent: false }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => (body += d));
        res.on('end', () => resolve(body));
      }).on('error', reject);
    });
    const pid = /^parley_process_info\{pid="(\d+)"\} 1$/m.exec(text)?.[1];
    if (pid) pids.add(pid);
    await new Promise((r) => setTimeout(r, 50));
  }
}

if (import.meta.main) {
  const { table } = await gatewayByProcesses();
  process.stdout.write(`Parley gateway by processes — Node ${process.version}, ${availableParallelism()} cores\n\n${table.join('\n')}\n`);
}
