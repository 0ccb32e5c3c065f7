// npm run bench:notify — notifications from the trigger to their sinks:
// `POST /v1/notifications` at a fixed offered rate, each to one of USERS users
// who has a webhook endpoint for `notification.created` (a node:http receiver
// here) and a WebSocket subscribed to the `notifications` topic. So every
// notification takes both paths: the webhook one (notification stored →
// `notification.created` on the bus → the webhooks subscriber makes a message
// and queues its delivery → a worker signs and POSTs it) and the in-app one
// (the same event → the realtime relay → the socket). The POST's send time
// travels in the notification's `data`; the receiver and the sockets take
// their time against it (every process here reads this machine's clock).
//
// Two setups, each in processes of its own (the `parley` CLI, as deployed):
//  - embedded: `parley start` on PGlite (a data directory on disk), in-process
//    bus and database queue;
//  - PostgreSQL + Redis: `parley serve` (HTTP, WebSocket, bus subscribers) and
//    `parley worker` (the delivery queue) as two processes, BullMQ on Redis.
// The trigger is a child process of its own; the receiver and the sockets run
// in this one. Loopback only, every phase bounded in count and time.
//
//   node bench/notify.ts            the run
//   node bench/notify.ts trigger    its load child, driven over IPC
//
// BENCH_NOTIFY_RATES (250,500,1000), BENCH_NOTIFY_SECONDS (10) per rate,
// BENCH_NOTIFY_SETUPS (embedded,postgres), BENCH_NOTIFY_USERS (50),
// BENCH_NOTIFY_CPU_PROF=<dir>: the Parley processes write .cpuprofile files
// there when they stop.
import { readFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { cpus, loadavg } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { WebSocket } from 'ws';
import { freshPostgresDatabase } from '../test/support/app.ts';
import { call, clusterEnv, runCli, startServer, tempDataDir, type ServerProcess } from '../test/support/process.ts';
import { COUNTED_LIMITS } from './gateway-processes.ts';
import { cpuMs, forkRole, now, pct, procCpuMs, serveIpc } from './ipc.ts';

const list = (v: string | undefined, d: string) => (v ?? d).split(',').map((s) => s.trim()).filter(Boolean);
const RATES = list(process.env.BENCH_NOTIFY_RATES, '250,500,1000').map(Number);
const SECONDS = Number(process.env.BENCH_NOTIFY_SECONDS ?? 10);
const SETUPS = list(process.env.BENCH_NOTIFY_SETUPS, 'embedded,postgres') as Array<'embedded' | 'postgres'>;
const USERS = Number(process.env.BENCH_NOTIFY_USERS ?? 50);
const PROFILE_DIR = process.env.BENCH_NOTIFY_CPU_PROF;
/** After the last send, how long the sinks may take to catch up before the phase is closed. */
const DRAIN_MS = 30_000;
/** POSTs in flight at most: past that the trigger waits (and says so), rather than opening sockets without end. */
const MAX_IN_FLIGHT = 512;
/** A POST without an answer after this long counts as failed. */
const POST_TIMEOUT_MS = 30_000;
/** A phase that could not send its count in its time (the server fell behind) stops sending this much later. */
const SEND_GRACE_MS = 5_000;
const DATABASE_URL = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const PASSWORD = 'bench password 1234';

// ---- trigger: POST /v1/notifications at a fixed rate ---------------------------

async function trigger() {
  serveIpc(async (m) => {
    if (m.cmd !== 'send') throw new Error(`unknown command ${m.cmd}`);
    const { url, key, userIds, rate, seconds, phase } = m as { url: string; key: string; userIds: string[]; rate: number; seconds: number; phase: string };
    const total = Math.round(rate * seconds);
    const latencies: number[] = [];
    const statuses: Record<string, number> = {};
    let sent = 0;
    let inFlight = 0;
    let capped = 0;
    const cpu0 = cpuMs();
    const start = now();
    const pending = new Set<Promise<void>>();
    // node:http with kept-alive sockets rather than fetch: the trigger shares the machine with what it measures,
    // and fetch cost it several times the CPU per request.
    const target = new URL(`${url}/v1/notifications`);
    const agent = new http.Agent({ keepAlive: true, maxSockets: MAX_IN_FLIGHT });
    const headers = { authorization: `Bearer ${key}`, 'content-type': 'application/json' };
    const request = (body: string) =>
      new Promise<number>((resolve, reject) => {
        const req = http.request(target, { method: 'POST', agent, headers: { ...headers, 'content-length': Buffer.byteLength(body) }, timeout: POST_TIMEOUT_MS }, (res) => {
          res.resume();
          res.on('end', () => resolve(res.statusCode ?? 0));
          res.on('error', reject);
        });
        req.on('timeout', () => req.destroy(new Error('timed out')));
        req.on('error', reject);
        req.end(body);
      });
    const post = async (seq: number) => {
      const sentAt = now();
      const body = JSON.stringify({ userId: userIds[seq % userIds.length], category: 'system.message', title: `Bench ${seq}`, body: 'A notification from bench:notify.', data: { phase, seq, sentAt } });
      try {
        const status = await request(body);
        statuses[status] = (statuses[status] ?? 0) + 1;
        if (status === 201) latencies.push(now() - sentAt);
      } catch (err) {
        const name = (err as Error).message;
        statuses[name] = (statuses[name] ?? 0) + 1;
      }
    };
    // Ticks of about 10 ms: each sends what is due by then, without waiting for answers (open loop) up to MAX_IN_FLIGHT.
    const stopAt = start + seconds * 1000 + SEND_GRACE_MS;
    while (sent < total && now() < stopAt) {
      const due = Math.min(total, Math.floor(((now() - start) / 1000) * rate) + 1);
      while (sent < due && now() < stopAt) {
        if (inFlight >= MAX_IN_FLIGHT) {
          capped++;
          await Promise.race(pending);
          continue;
        }
        inFlight++;
        const p = post(sent++).finally(() => {
          inFlight--;
          pending.delete(p);
        });
        pending.add(p);
      }
      await sleep(10);
    }
    const sendSeconds = (now() - start) / 1000;
    await Promise.all(pending);
    latencies.sort((a, b) => a - b);
    return { sent, unsent: total - sent, sendSeconds, statuses, capped, p50: pct(latencies, 50), p99: pct(latencies, 99), cpuMs: cpuMs() - cpu0 };
  });
}

// ---- the sinks: a webhook receiver and one socket per user ----------------------

interface Tally {
  phase: string;
  latencies: number[];
  ids: Set<string>;
  duplicates: number;
  last: number;
}
const tally = (phase: string): Tally => ({ phase, latencies: [], ids: new Set(), duplicates: 0, last: 0 });

function sinks() {
  let webhooks = tally('');
  let sockets = tally('');
  const record = (t: Tally, id: string, data: { phase?: string; sentAt?: number } | undefined) => {
    if (!data || data.phase !== t.phase) return;
    if (t.ids.has(id)) return void t.duplicates++;
    t.ids.add(id);
    t.last = now();
    t.latencies.push(t.last - data.sentAt!);
  };
  const receiver = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      try {
        // { type, timestamp, data: the notification }: its own data carries the phase and the send time.
        const body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
        record(webhooks, String(req.headers['webhook-id']), body.data?.data);
      } catch {
        // Counted as missing.
      }
      res.writeHead(200, { 'content-type': 'text/plain' }).end('ok');
    });
  });
  const open: WebSocket[] = [];
  return {
    receiver,
    async listen() {
      await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
      return `http://127.0.0.1:${(receiver.address() as AddressInfo).port}`;
    },
    /** A socket authenticated as the user, subscribed to `notifications`. */
    connect(url: string, token: string) {
      return new Promise<void>((resolve, reject) => {
        const ws = new WebSocket(`${url.replace('http', 'ws')}/v1/ws`, ['parley.v1', `parley.auth.${token}`]);
        ws.on('error', reject);
        ws.on('close', (code) => reject(new Error(`socket closed ${code} before it subscribed`)));
        ws.on('open', () => ws.send('{"type":"subscribe","topic":"notifications"}'));
        ws.on('message', (raw) => {
          const f = JSON.parse(String(raw));
          if (f.type === 'event' && f.event.type === 'notification.created') record(sockets, f.event.payload.notification.id, f.event.payload.notification.data);
          else if (f.type === 'subscribed') {
            open.push(ws);
            resolve();
          }
        });
      });
    },
    reset(phase: string) {
      webhooks = tally(phase);
      sockets = tally(phase);
    },
    tallies: () => ({ webhooks, sockets }),
    async close() {
      for (const ws of open) ws.terminate();
      receiver.closeAllConnections();
      await new Promise<void>((resolve) => receiver.close(() => resolve()));
    },
  };
}

// ---- the run -----------------------------------------------------------------

/** Busy time of the whole machine, all cores, in ms. */
function machineBusyMs(): number {
  const [, ...t] = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).map(Number);
  const idle = t[3]! + t[4]!;
  return ((t.reduce((a, b) => a + b, 0) - idle) * 1000) / 100;
}

interface Setup {
  name: string;
  url: string;
  /** Parley's processes, named. */
  processes: Array<[string, ServerProcess]>;
  env: Record<string, string>;
  /** Webhook messages made so far (by the bus subscriber, before any delivery), where another process can read the database. */
  messages?: () => Promise<number>;
  stop(): Promise<void>;
}

const baseEnv = (): Record<string, string> => ({
  NODE_ENV: 'production',
  LOG_LEVEL: 'warn',
  WEBHOOKS_ALLOW_PRIVATE: 'true',
  // One user gets thousands in a run: far above the daily limit of a category.
  NOTIFICATIONS_DAILY_LIMIT: '1000000000',
  // Request limits counted as deployed (the trigger's admin key counts against them), far above the load.
  ...COUNTED_LIMITS,
  AUTH_RATE_LIMIT_PER_IP: '1000000',
  AUTH_RATE_LIMIT_PER_ACCOUNT: '1000000',
  ...(PROFILE_DIR ? { NODE_OPTIONS: `--cpu-prof --cpu-prof-dir=${PROFILE_DIR}` } : {}),
});

async function adminUser(env: Record<string, string>) {
  const email = `bench-admin-${Date.now()}@example.com`;
  const made = await runCli(['admin', 'create-user', '--email', email, '--password', PASSWORD, '--admin'], { ...env, NODE_OPTIONS: '' }, 300_000);
  if (made.code !== 0) throw new Error(`admin create-user: ${made.signal ?? made.code} ${made.stderr}`);
  return email;
}

async function embedded(): Promise<Setup & { admin: string }> {
  const data = tempDataDir();
  const env = { ...baseEnv(), PARLEY_DATA_DIR: data.dir, PARLEY_MASTER_KEY: Buffer.alloc(32, 7).toString('base64'), PUBLIC_URL: 'http://parley.bench' };
  // PGlite has one writer: the admin is made before the server opens the directory.
  const admin = await adminUser(env);
  const one = await startServer(env, 'start');
  return {
    name: 'embedded: `parley start`, PGlite',
    url: one.url,
    processes: [['parley', one]],
    env,
    admin,
    async stop() {
      await one.stop();
      data.remove();
    },
  };
}

async function postgres(): Promise<Setup & { admin: string }> {
  process.env.DATABASE_URL = DATABASE_URL;
  process.env.REDIS_URL = REDIS_URL;
  const db = await freshPostgresDatabase();
  const env = clusterEnv(db.url, baseEnv());
  const admin = await adminUser(env);
  const [serve, worker] = [await startServer(env, 'serve'), await startServer(env, 'worker')];
  const reader = new pg.Client({ connectionString: db.url });
  await reader.connect();
  return {
    name: 'PostgreSQL + Redis: `parley serve` + `parley worker`',
    url: serve.url,
    processes: [
      ['serve', serve],
      ['worker', worker],
    ],
    env,
    admin,
    messages: async () => (await reader.query<{ n: number }>('select count(*)::int as n from webhook_messages')).rows[0]!.n,
    async stop() {
      await reader.end();
      await Promise.all([serve.stop(), worker.stop()]);
      await db.drop();
    },
  };
}

const ok = (res: { status: number; body: any }, status: number, what: string) => {
  if (res.status !== status) throw new Error(`${what}: ${res.status} ${JSON.stringify(res.body)}`);
  return res.body;
};

interface Row {
  setup: string;
  rate: number;
  sent: number;
  statuses: Record<string, number>;
  capped: number;
  unsent: number;
  postP50: number;
  postP99: number;
  webhooks: { received: number; perSec: number; p50: number; p99: number; max: number; duplicates: number; atSendEnd: number; madeAtSendEnd?: number };
  sockets: { received: number; p50: number; p99: number; max: number };
  cpu: string;
  cpuPerNotification: string;
}

async function measure(setup: Setup & { admin: string }, load: Awaited<ReturnType<typeof forkRole>>): Promise<Row[]> {
  const sink = sinks();
  const receiverUrl = await sink.listen();
  try {
    const { url } = setup;
    const login = ok(await call(url, 'POST', '/v1/auth/login', { body: { email: setup.admin, password: PASSWORD } }), 200, 'admin login');
    const key = ok(await call(url, 'POST', '/v1/api-keys', { token: login.accessToken, body: { name: 'bench', scopes: ['notifications:send'] } }), 201, 'api key').key as string;

    process.stderr.write(`  ${USERS} users with an endpoint and a socket each…\n`);
    const userIds: string[] = [];
    const run = Date.now().toString(36);
    for (let i = 0; i < USERS; i += 5) {
      const batch = await Promise.all(
        Array.from({ length: Math.min(5, USERS - i) }, async (_, j) => {
          const reg = ok(await call(url, 'POST', '/v1/auth/register', { body: { email: `bench-${run}-${i + j}@example.com`, password: PASSWORD } }), 201, 'register');
          const token = reg.accessToken as string;
          ok(await call(url, 'POST', '/v1/webhooks/endpoints', { token, body: { url: `${receiverUrl}/u/${i + j}`, events: ['notification.created'] } }), 201, 'webhook endpoint');
          // In-app and webhook only: no email job per notification.
          ok(await call(url, 'PUT', '/v1/notifications/preferences', { token, body: { preferences: [{ category: 'system.message', channel: 'email', enabled: false }] } }), 200, 'preferences');
          await sink.connect(url, token);
          return reg.user.id as string;
        }),
      );
      userIds.push(...batch);
    }

    const phase = async (name: string, rate: number, seconds: number) => {
      sink.reset(name);
      const cpu0 = setup.processes.map(([, p]) => procCpuMs(p.child.pid!));
      const here0 = cpuMs();
      const busy0 = machineBusyMs();
      const messages0 = await setup.messages?.();
      const t0 = now();
      const sent = await load.call('send', { url, key, userIds, rate, seconds, phase: name }, seconds * 1000 + SEND_GRACE_MS + POST_TIMEOUT_MS + 10_000);
      const atSendEnd = sink.tallies().webhooks.ids.size;
      const madeAtSendEnd = messages0 === undefined ? undefined : (await setup.messages!()) - messages0;
      const deadline = now() + DRAIN_MS;
      while (now() < deadline) {
        const { webhooks, sockets } = sink.tallies();
        if (webhooks.ids.size >= sent.sent && sockets.ids.size >= sent.sent) break;
        await sleep(50);
      }
      const elapsed = now() - t0;
      const share = (ms: number) => `${((100 * ms) / elapsed).toFixed(0)}%`;
      const delivered = sink.tallies().webhooks.ids.size;
      const parleyMs = setup.processes.map(([, p], i) => procCpuMs(p.child.pid!) - cpu0[i]!);
      const cpu = [
        ...setup.processes.map(([n], i) => `${n} ${share(parleyMs[i]!)}`),
        `trigger ${share(sent.cpuMs)}`,
        `sinks ${share(cpuMs() - here0)}`,
        `machine ${share((machineBusyMs() - busy0) / cpus().length)} of ${cpus().length} cores`,
      ].join(', ');
      const { webhooks, sockets } = sink.tallies();
      const wl = webhooks.latencies.sort((a, b) => a - b);
      const sl = sockets.latencies.sort((a, b) => a - b);
      return {
        setup: setup.name,
        rate,
        sent: sent.sent as number,
        statuses: sent.statuses,
        capped: sent.capped,
        unsent: sent.unsent,
        postP50: sent.p50,
        postP99: sent.p99,
        webhooks: { received: wl.length, perSec: wl.length / ((webhooks.last - t0) / 1000 || 1), p50: pct(wl, 50), p99: pct(wl, 99), max: wl.at(-1) ?? NaN, duplicates: webhooks.duplicates, atSendEnd, madeAtSendEnd },
        sockets: { received: sl.length, p50: pct(sl, 50), p99: pct(sl, 99), max: sl.at(-1) ?? NaN },
        cpu,
        // What each notification cost Parley's processes, whatever share of the machine they got.
        cpuPerNotification: setup.processes.map(([n], i) => `${n} ${f(parleyMs[i]! / Math.max(1, delivered), 2)}`).join(', '),
      } satisfies Row;
    };

    process.stderr.write('  warm-up…\n');
    await phase('warm-up', 100, 2);
    const rows: Row[] = [];
    for (const rate of RATES) {
      process.stderr.write(`  ${rate}/s for ${SECONDS} s…\n`);
      rows.push(await phase(`r${rate}`, rate, SECONDS));
    }
    return rows;
  } finally {
    await sink.close();
  }
}

const f = (n: number, d = 1) => (Number.isFinite(n) ? n.toFixed(d) : 'n/a');

async function main() {
  const deadline = setTimeout(
    () => {
      process.stderr.write('bench:notify ran past its time limit; giving up\n');
      process.exit(1);
    },
    (SETUPS.length * ((RATES.length + 1) * (SECONDS + (SEND_GRACE_MS + POST_TIMEOUT_MS + DRAIN_MS) / 1000) + 120) + 60) * 1000,
  );
  deadline.unref();
  const loadAtStart = loadavg()[0]!;
  const load = await forkRole(new URL(import.meta.url), 'trigger');
  const rows: Row[] = [];
  try {
    for (const which of SETUPS) {
      process.stderr.write(`${which}…\n`);
      const setup = await (which === 'embedded' ? embedded() : postgres());
      try {
        rows.push(...(await measure(setup, load)));
      } finally {
        await setup.stop();
      }
    }
  } finally {
    load.proc.kill();
  }

  const out: string[] = [
    `Parley notifications bench — Node ${process.version}, ${cpus().length} × ${cpus()[0]?.model.trim()}, ${USERS} users (one webhook endpoint and one socket each), ${SECONDS} s per rate, load average ${loadAtStart.toFixed(1)} at start, ${loadavg()[0]!.toFixed(1)} at the end`,
    '',
    'Latency from the POST leaving the trigger to the receiver (webhook) or the socket (in-app), in ms.',
    '',
    '| setup | offered /s | sent | POST 201 p50 / p99 ms | webhooks received | deliveries/s | webhook p50 / p99 / max ms | in-app received | in-app p50 / p99 ms | CPU | Parley CPU ms per webhook delivered |',
    '|---|--:|--:|--:|--:|--:|--:|--:|--:|---|---|',
  ];
  for (const r of rows) {
    const failed = Object.entries(r.statuses).filter(([s]) => s !== '201');
    const notes = [failed.length ? `not 201: ${failed.map(([s, n]) => `${s} × ${n}`).join(', ')}` : '', r.capped ? `${r.capped} sends waited for ${MAX_IN_FLIGHT} in flight` : '', r.unsent ? `${r.unsent} not sent in time` : '', r.webhooks.duplicates ? `${r.webhooks.duplicates} duplicate deliveries` : '']
      .filter(Boolean)
      .join('; ');
    out.push(
      `| ${r.setup} | ${r.rate} | ${r.sent}${notes ? ` (${notes})` : ''} | ${f(r.postP50)} / ${f(r.postP99)} | ${r.webhooks.received} (${r.webhooks.atSendEnd} when sending stopped${r.webhooks.madeAtSendEnd === undefined ? '' : `, ${r.webhooks.madeAtSendEnd} messages made by then`}) | ${f(r.webhooks.perSec, 0)} | ${f(r.webhooks.p50)} / ${f(r.webhooks.p99)} / ${f(r.webhooks.max, 0)} | ${r.sockets.received} | ${f(r.sockets.p50)} / ${f(r.sockets.p99)} | ${r.cpu} | ${r.cpuPerNotification} |`,
    );
  }
  const target = rows.filter((r) => r.setup.startsWith('PostgreSQL') && r.rate >= 1000);
  out.push(
    '',
    `"deliveries/s": webhooks received over the time from the first send to the last delivery. Target: 1,000 webhook deliveries/s sustained with p99 < 100 ms on PostgreSQL + Redis with a separate worker (${
      target.length ? target.map((r) => (r.webhooks.received >= r.sent && r.webhooks.perSec >= 0.95 * r.rate && r.webhooks.p99 < 100 ? 'met' : 'NOT met')).join(', ') : 'not run'
    }).`,
  );
  process.stdout.write(out.join('\n') + '\n');
}

if (process.argv[2] === 'trigger') await trigger();
else await main();
