// npm run bench:ws — the WebSocket gateway at scale: WS_BENCH_CONNECTIONS
// sockets (default 10,000) spread over two Parley instances that share
// PostgreSQL and Redis (DATABASE_URL / REDIS_URL, else the machine's on
// 127.0.0.1), each instance and the load client in a process of its own.
// Events are published on instance A's bus; whichever instance relays them,
// Redis fans them out to the sockets of both. Reports delivery latency (the
// publish time travels in the payload; both clocks are this machine's) and
// server memory per connection. Loopback only, every phase bounded in time.
//
//   node bench/ws.ts                  the run (orchestrator)
//   node bench/ws.ts server|client    its children, driven over IPC
import { randomBytes } from 'node:crypto';
import { execSync, type ChildProcess } from 'node:child_process';
import { cpus, loadavg } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { WebSocket } from 'ws';
import { cpuMs, forkRole, now, pct, serveIpc } from './ipc.ts';

const CONNECTIONS = Number(process.env.WS_BENCH_CONNECTIONS ?? 10_000);
const SOCKETS_PER_USER = 10;
const USERS = Math.max(1, Math.ceil(CONNECTIONS / SOCKETS_PER_USER));
/** Event rates (per second) measured, each for PHASE_SECONDS; every event reaches SOCKETS_PER_USER sockets. */
const RATES = [100, 500, 1_000];
const PHASE_SECONDS = 5;
const CONNECT_CONCURRENCY = 200;
const DATABASE_URL = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';

/** A role of this file in a child process of its own. */
const child = (role: 'server' | 'client') => forkRole(new URL(import.meta.url), role, ['--expose-gc', ...(process.env.WS_BENCH_NODE_FLAGS ?? '').split(' ').filter(Boolean)]);

// ---- server: one Parley instance ---------------------------------------------

async function server() {
  const { loadConfig } = await import('../src/config.ts');
  const { createDeps } = await import('../src/deps.ts');
  const { createServices } = await import('../src/services.ts');
  const { buildApp } = await import('../src/app.ts');
  let probe: number[] | undefined;
  let parley: { app: Awaited<ReturnType<typeof buildApp>>; deps: Awaited<ReturnType<typeof createDeps>>; services: ReturnType<typeof createServices> } | undefined;
  const memory = () => {
    global.gc?.();
    global.gc?.();
    const m = process.memoryUsage();
    return { rss: m.rss, heapUsed: m.heapUsed, external: m.external + m.arrayBuffers };
  };

  serveIpc(async (m) => {
    switch (m.cmd) {
      case 'start': {
        const config = loadConfig(m.env);
        const deps = await createDeps(config);
        const services = createServices(deps);
        const app = await buildApp(deps, services);
        await app.listen({ port: 0, host: '127.0.0.1' });
        parley = { app, deps, services };
        const address = app.server.address() as { port: number };
        return { url: `ws://127.0.0.1:${address.port}/v1/ws` };
      }
      case 'memory':
        return memory();
      case 'cpu':
        return cpuMs();
      case 'probe': {
        // A consumer group of its own on the same events: how long the bus alone takes, for comparison.
        if (!probe) {
          probe = [];
          await parley!.deps.bus.subscribe('bench-probe', ['job.progress'], (e) => void probe!.push(now() - (e.payload.progress as { sentAt: number }).sentAt));
        }
        return probe.splice(0);
      }
      case 'users': {
        // Through the services, not /v1/auth/register: no argon2 time for a thousand users.
        const { services } = parley!;
        const tokens: string[] = [];
        const run = randomBytes(4).toString('hex');
        for (let i = 0; i < m.count; i += 25) {
          const batch = await Promise.all(
            Array.from({ length: Math.min(25, m.count - i) }, async (_, j) => {
              const user = await services.users.create({ email: `ws-bench-${run}-${i + j}@example.com`, passwordHash: null });
              return { id: user.id, token: (await services.auth.signIn(user, 'password', { ip: '127.0.0.1' })).accessToken };
            }),
          );
          tokens.push(...batch.map((b) => `${b.id} ${b.token}`));
        }
        return tokens;
      }
      case 'publish': {
        // A fixed rate, to users picked in turn, in ticks of about 10 ms; the payload carries the publish time.
        const { deps } = parley!;
        const userIds: string[] = m.userIds;
        const start = now();
        const total = Math.round(m.rate * m.seconds);
        let sent = 0;
        const pending: Promise<unknown>[] = [];
        while (sent < total) {
          const due = Math.min(total, Math.floor(((now() - start) / 1000) * m.rate) + 1);
          while (sent < due) {
            const userId = userIds[sent++ % userIds.length]!;
            pending.push(deps.bus.publish('job.progress', { userId, jobId: '00000000-0000-4000-8000-000000000000', queue: 'bench', state: 'active', progress: { sentAt: now() } }));
          }
          await sleep(10);
        }
        await Promise.all(pending);
        return { sent };
      }
      case 'stats': {
        const m2 = parley!.deps.metrics.registry.getSingleMetric('parley_ws_connections');
        return { sockets: (await m2!.get()).values[0]!.value };
      }
      case 'stop':
        await parley?.app.close();
        await parley?.deps.close();
        setImmediate(() => process.exit(0));
        return 'stopped';
    }
    throw new Error(`unknown command ${m.cmd}`);
  });
}

// ---- client: the sockets -----------------------------------------------------

async function client() {
  const sockets: WebSocket[] = [];
  let latencies: number[] = [];
  let received = 0;
  let closed = 0;
  const closeCodes = new Map<number, number>();

  function open(url: string, token: string): Promise<void> {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(url, ['parley.v1', `parley.auth.${token}`]);
      ws.on('error', (err) => reject(err));
      ws.on('close', (code) => {
        closed++;
        closeCodes.set(code, (closeCodes.get(code) ?? 0) + 1);
        reject(new Error(`closed ${code} before subscribed`));
      });
      ws.on('open', () => ws.send('{"type":"subscribe","topic":"jobs"}'));
      ws.on('message', (data) => {
        const text = String(data);
        // An event frame's send time by a substring search, not a parse: 10,000 frames a second parsed in
        // this process made garbage whose collections showed up in the latencies it measures.
        const at = text.startsWith('{"type":"event"') ? text.indexOf('"sentAt":') : -1;
        if (at !== -1) {
          received++;
          latencies.push(now() - Number.parseFloat(text.slice(at + 9)));
          return;
        }
        const f = JSON.parse(text);
        if (f.type === 'subscribed') {
          sockets.push(ws);
          resolve();
        }
      });
    });
  }

  serveIpc(async (m) => {
    switch (m.cmd) {
      case 'connect': {
        const t0 = now();
        const jobs: Array<{ url: string; token: string }> = m.jobs;
        let i = 0;
        let failed = 0;
        await Promise.all(
          Array.from({ length: CONNECT_CONCURRENCY }, async () => {
            while (i < jobs.length) {
              const j = jobs[i++]!;
              await open(j.url, j.token).catch(() => failed++);
            }
          }),
        );
        return { open: sockets.length, failed, seconds: (now() - t0) / 1000 };
      }
      case 'cpu':
        return cpuMs();
      case 'reset':
        latencies = [];
        received = 0;
        return 'ok';
      case 'results':
        return { received, latencies, closed, closeCodes: Object.fromEntries(closeCodes) };
      case 'close':
        for (const ws of sockets) ws.terminate();
        return 'ok';
    }
    throw new Error(`unknown command ${m.cmd}`);
  });
}

// ---- orchestrator ------------------------------------------------------------

const f = (n: number, d = 2) => (Number.isFinite(n) ? n.toFixed(d) : 'n/a');
const mb = (bytes: number) => `${(bytes / 1048576).toFixed(0)} MB`;
const kb = (bytes: number) => `${(bytes / 1024).toFixed(1)} KB`;

async function main() {
  const fdLimit = Number(execSync('ulimit -n', { shell: '/bin/sh' }).toString().trim());
  if (Number.isFinite(fdLimit) && fdLimit < CONNECTIONS + 1_000) {
    process.stderr.write(`ulimit -n is ${fdLimit}: the client process needs about ${CONNECTIONS + 1_000} descriptors (raise it with ulimit -n, or lower WS_BENCH_CONNECTIONS)\n`);
    process.exitCode = 1;
    return;
  }
  const deadline = setTimeout(() => {
    process.stderr.write('bench:ws took longer than 3 minutes; giving up\n');
    process.exit(1);
  }, 180_000);
  deadline.unref();

  const loadAtStart = loadavg()[0]!;
  process.env.DATABASE_URL = DATABASE_URL;
  const { freshPostgresDatabase } = await import('../test/support/app.ts');
  const db = await freshPostgresDatabase();
  const env = {
    NODE_ENV: 'production',
    LOG_LEVEL: 'warn',
    PORT: '0',
    HOST: '127.0.0.1',
    PUBLIC_URL: 'http://parley.bench',
    DATABASE_URL: db.url,
    REDIS_URL,
    REDIS_PREFIX: `parley:bench:${randomBytes(4).toString('hex')}:`,
    PARLEY_MASTER_KEY: randomBytes(32).toString('base64'),
    PARLEY_DATA_DIR: 'memory://',
    RATE_LIMIT_ENABLED: 'false',
    // 10 sockets per user, 5 on each instance.
    WS_MAX_CONNECTIONS_PER_USER: String(SOCKETS_PER_USER),
    // Passed through, to see what heartbeats cost (they ping a tenth of the sockets every tenth of it).
    ...(process.env.WS_HEARTBEAT_MS ? { WS_HEARTBEAT_MS: process.env.WS_HEARTBEAT_MS } : {}),
  };
  const children: ChildProcess[] = [];
  const { Redis } = await import('ioredis');
  const redis = new Redis(REDIS_URL);
  try {
    const a = await child('server');
    children.push(a.proc);
    const urlA: string = (await a.call('start', { env })).url; // migrates the database
    const b = await child('server');
    children.push(b.proc);
    const urlB: string = (await b.call('start', { env })).url;
    const load = await child('client');
    children.push(load.proc);

    process.stderr.write(`  creating ${USERS} users…\n`);
    const users = ((await a.call('users', { count: USERS }, 120_000)) as string[]).map((s) => s.split(' ') as [string, string]);
    const baseline = [await a.call('memory'), await b.call('memory')];

    process.stderr.write(`  opening ${CONNECTIONS} sockets…\n`);
    const jobs = Array.from({ length: CONNECTIONS }, (_, i) => ({ url: i % 2 === 0 ? urlA : urlB, token: users[i % USERS]![1] }));
    const connected = await load.call('connect', { jobs }, 120_000);
    const perInstance = [(await a.call('stats')).sockets as number, (await b.call('stats')).sockets as number];
    const loaded = [await a.call('memory'), await b.call('memory')];

    const redisCpuMs = async () => {
      const info = await redis.info('cpu');
      const sec = (k: string) => Number(new RegExp(`${k}:([\\d.]+)`).exec(info)?.[1] ?? NaN);
      return (sec('used_cpu_user') + sec('used_cpu_sys')) * 1000;
    };
    const cpuOf = async () => [await a.call('cpu'), await b.call('cpu'), await load.call('cpu'), await redisCpuMs()] as number[];
    const userIds = users.map(([id]) => id);
    await b.call('probe');
    await a.call('publish', { userIds, rate: 200, seconds: 1 }); // warm-up
    await sleep(500);
    await b.call('probe');
    const rows: string[] = [];
    for (const rate of RATES) {
      process.stderr.write(`  ${rate} events/s for ${PHASE_SECONDS} s…\n`);
      await load.call('reset');
      const cpu0 = await cpuOf();
      const t0 = now();
      const { sent } = await a.call('publish', { userIds, rate, seconds: PHASE_SECONDS });
      await sleep(1_000); // the last deliveries
      const cpu = (await cpuOf()).map((c, i) => `${f((100 * (c - cpu0[i]!)) / (now() - t0), 0)}%`);
      const r = await load.call('results', {}, 120_000);
      const bus = ((await b.call('probe')) as number[]).sort((x, y) => x - y);
      const lat = (r.latencies as number[]).sort((x, y) => x - y);
      const expected = sent * SOCKETS_PER_USER;
      rows.push(`| ${rate} | ${rate * SOCKETS_PER_USER} | ${sent} | ${r.received} / ${expected} | ${f(pct(lat, 50))} | ${f(pct(lat, 99))} | ${f(pct(lat, 99.9))} | ${f(lat.at(-1) ?? NaN)} | ${f(pct(bus, 50))} / ${f(pct(bus, 99))} | ${cpu.join(' / ')} |`);
    }
    const final = await load.call('results');

    const out: string[] = [];
    out.push(
      `Parley WebSocket bench — Node ${process.version}, ${cpus().length} × ${cpus()[0]?.model.trim()}, PostgreSQL + Redis, two instances + load client in 3 processes, load average ${loadAtStart.toFixed(1)} at start, ${loadavg()[0]!.toFixed(1)} at the end`,
      '',
      `${connected.open} of ${CONNECTIONS} sockets open (${connected.failed} failed) in ${f(connected.seconds, 1)} s: ${USERS} users × ${SOCKETS_PER_USER} sockets, authenticated by subprotocol, each subscribed to \`jobs\`; ${perInstance[0]} on A, ${perInstance[1]} on B.`,
      '',
      '### Delivery latency: bus.publish on A → relay (either instance) → Redis fan-out → socket → client',
      '',
      '| events/s | frames/s | events | frames received | p50 ms | p99 ms | p99.9 ms | max ms | bus alone p50 / p99 ms | CPU A / B / client / Redis |',
      '|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|',
      ...rows,
      '',
      '### Server memory (after GC), per open socket',
      '',
      '| instance | sockets | RSS growth | per socket | JS heap growth | per socket | external + buffers per socket |',
      '|---|--:|--:|--:|--:|--:|--:|',
      ...(['A', 'B'] as const).map((name, i) => {
        const d = { rss: loaded[i].rss - baseline[i].rss, heap: loaded[i].heapUsed - baseline[i].heapUsed, ext: loaded[i].external - baseline[i].external };
        const n = perInstance[i]!;
        return `| ${name} | ${n} | ${mb(d.rss)} | ${kb(d.rss / n)} | ${mb(d.heap)} | ${kb(d.heap / n)} | ${kb(d.ext / n)} |`;
      }),
      '',
      'RSS growth understates: the sockets reuse heap pages V8 had committed during startup (migrations, module loading). JS heap + external is the figure to plan with.',
      '"bus alone": publish on A → the handler of a second consumer group (in B), the same Redis Streams hop the relay waits for. Events go out in bursts of rate/100 every 10 ms.',
      `Sockets closed by the server during the run: ${final.closed}${final.closed ? ` (${JSON.stringify(final.closeCodes)})` : ''}. Target: p99 < 10 ms at 10,000 connections.`,
    );
    process.stdout.write(out.join('\n') + '\n');
    await load.call('close');
    await Promise.all([a.call('stop'), b.call('stop')]);
  } finally {
    // Stopped servers exit on their own (a profile asked for in WS_BENCH_NODE_FLAGS is written then); a few seconds at most.
    await Promise.race([Promise.all(children.map((c) => (c.exitCode === null ? new Promise((resolve) => c.once('exit', resolve)) : undefined))), sleep(5_000)]);
    for (const c of children) if (c.exitCode === null) c.kill();
    await sleep(200);
    await db.drop().catch(() => {});
    await dropKeys(redis, env.REDIS_PREFIX).catch(() => {});
    redis.disconnect();
    clearTimeout(deadline);
  }
}

/** The bench's streams and their groups, left in Redis under its prefix. */
async function dropKeys(redis: import('ioredis').Redis, prefix: string) {
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
    if (keys.length) await redis.del(...keys);
    cursor = next;
  } while (cursor !== '0');
}

const role = process.argv[2];
if (role === 'server') await server();
else if (role === 'client') await client();
else await main();
