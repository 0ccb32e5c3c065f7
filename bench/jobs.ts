// npm run bench:jobs — the job queue's throughput and pickup latency, for each
// adapter: BullMQ on Redis (+ PostgreSQL for the outbox), the database queue
// on PostgreSQL, and the embedded database queue on PGlite.
//  - throughput: N jobs enqueued first (64 enqueues in flight), then a worker
//    with a no-op handler drains them; jobs/s is N over the time from start()
//    to the last job recorded completed.
//  - pickup: one job at a time, from the enqueue call to its handler starting.
// On PostgreSQL and Redis the producer is another queue instance with its own
// connections, as an API process is to a worker; on PGlite both are one
// process, as embedded runs. Defaults to the machine's PostgreSQL and Redis.
import { randomBytes } from 'node:crypto';
import { cpus, loadavg } from 'node:os';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { sql } from 'drizzle-orm';
import { Redis } from 'ioredis';
import { openDatabase, type Database } from '../src/platform/db/database.ts';
import { createLogger } from '../src/platform/observability/logger.ts';
import { bullmqQueue, type BullmqJobQueue } from '../src/platform/queue/bullmq-queue.ts';
import { dbQueue } from '../src/platform/queue/db-queue.ts';
import type { JobQueue } from '../src/platform/queue/queue.ts';
import { freshPostgresDatabase } from '../test/support/app.ts';

process.env.DATABASE_URL ??= 'postgres://postgres@127.0.0.1:5432/test';
const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const PICKUPS = 300;
const DRAIN_LIMIT_MS = 30_000;
const logger = createLogger('warn');

interface Side {
  name: string;
  jobs: number;
  concurrency: number;
  producer: JobQueue;
  consumer: JobQueue;
  /** Jobs of a queue not finished yet. */
  unfinished(queue: string): Promise<number>;
  close(): Promise<void>;
}

async function pgliteSide(): Promise<Side> {
  const database = openDatabase({ dataDir: 'memory://' });
  await database.migrate();
  const queue = dbQueue({ db: database.db, logger });
  return {
    name: 'database queue, PGlite (embedded)',
    jobs: 2000,
    concurrency: 10,
    producer: queue,
    consumer: queue,
    unfinished: (q) => countUnfinished(database, q),
    async close() {
      await queue.close();
      await database.close();
    },
  };
}

async function postgresSide(): Promise<Side> {
  const fresh = await freshPostgresDatabase();
  const [a, b] = [openDatabase({ url: fresh.url, dataDir: 'memory://' }), openDatabase({ url: fresh.url, dataDir: 'memory://' })];
  await a.migrate();
  const producer = dbQueue({ db: a.db, logger, listenUrl: fresh.url });
  const consumer = dbQueue({ db: b.db, logger, listenUrl: fresh.url });
  return {
    name: 'database queue, PostgreSQL',
    jobs: 5000,
    concurrency: 10,
    producer,
    consumer,
    unfinished: (q) => countUnfinished(a, q),
    async close() {
      await consumer.close();
      await producer.close();
      await a.close();
      await b.close();
      await fresh.drop();
    },
  };
}

async function bullmqSide(): Promise<Side> {
  const fresh = await freshPostgresDatabase();
  const database = openDatabase({ url: fresh.url, dataDir: 'memory://' });
  await database.migrate();
  const redisPrefix = `parley:bench:${randomBytes(6).toString('hex')}:`;
  const make = () => bullmqQueue({ redisUrl: REDIS_URL, redisPrefix, db: database.db, logger, listenUrl: fresh.url });
  const [producer, consumer]: BullmqJobQueue[] = [make(), make()];
  return {
    name: 'BullMQ, Redis',
    jobs: 20_000,
    concurrency: 50,
    producer,
    consumer,
    // Completed jobs are trimmed to the last 10,000 (removeOnComplete): count what is left to do instead.
    unfinished: async (q) => Object.values(await (await producer.bull(q)).getJobCounts('waiting', 'prioritized', 'delayed', 'active')).reduce((a, b) => a + b, 0),
    async close() {
      await consumer.close();
      await producer.close();
      await database.close();
      await fresh.drop();
      const redis = new Redis(REDIS_URL);
      for (let cursor = '0'; ; ) {
        const [next, keys] = await redis.scan(cursor, 'MATCH', `${redisPrefix}*`, 'COUNT', 1000);
        if (keys.length) await redis.del(...keys);
        if ((cursor = next) === '0') break;
      }
      await redis.quit();
    },
  };
}

async function countUnfinished(database: Database, queue: string): Promise<number> {
  const rows = (await database.db.execute(sql`select count(*)::int as n from jobs where queue = ${queue} and state <> 'completed'`)) as unknown as { rows: Array<{ n: number }> };
  return rows.rows[0]!.n;
}

const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)]!;
};

interface Figures {
  name: string;
  jobs: number;
  concurrency: number;
  enqueuePerSec: number;
  drainPerSec: number;
  drained: number;
  p50: number;
  p99: number;
  max: number;
}

async function measure(side: Side): Promise<Figures> {
  const { producer, consumer } = side;
  // Pickup latency first, on an idle worker: one job at a time.
  const waiting = new Map<number, () => void>();
  consumer.process('bench.pickup', async (d: { i: number }) => waiting.get(d.i)?.(), { concurrency: side.concurrency });
  await consumer.start();
  const samples: number[] = [];
  for (let i = -20; i < PICKUPS; i++) {
    const started = new Promise<void>((resolve) => waiting.set(i, resolve));
    const t0 = performance.now();
    await producer.enqueue('bench.pickup', { i });
    await started;
    if (i >= 0) samples.push(performance.now() - t0); // the first 20 warm up
    waiting.delete(i);
  }

  // Throughput: everything enqueued while no handler takes the queue, then one is registered and drains it.
  const t1 = performance.now();
  let next = 0;
  await Promise.all(
    Array.from({ length: 64 }, async () => {
      while (next < side.jobs) {
        next++;
        await producer.enqueue('bench.drain', null, { attempts: 1 });
      }
    }),
  );
  const enqueueMs = performance.now() - t1;
  let ran = 0;
  const t2 = performance.now();
  consumer.process('bench.drain', async () => void ran++, { concurrency: side.concurrency });
  let left = side.jobs;
  while (left > 0 && performance.now() - t2 < DRAIN_LIMIT_MS) {
    await sleep(ran < side.jobs ? 20 : 2);
    if (ran >= side.jobs) left = await side.unfinished('bench.drain');
  }
  const drainMs = performance.now() - t2;
  const done = left > 0 ? Math.min(ran, side.jobs - (await side.unfinished('bench.drain'))) : side.jobs;
  return {
    name: side.name,
    jobs: side.jobs,
    concurrency: side.concurrency,
    enqueuePerSec: side.jobs / (enqueueMs / 1000),
    drainPerSec: done / (drainMs / 1000),
    drained: done,
    p50: pct(samples, 50),
    p99: pct(samples, 99),
    max: Math.max(...samples),
  };
}

async function main() {
  const out: string[] = [];
  out.push(`Parley jobs bench — Node ${process.version}, ${cpus().length} × ${cpus()[0]?.model.trim()}, load average ${loadavg()[0]!.toFixed(1)} at start`, '');
  const results: Figures[] = [];
  for (const make of [bullmqSide, postgresSide, pgliteSide]) {
    const side = await make();
    process.stderr.write(`  ${side.name}…\n`);
    try {
      results.push(await measure(side));
    } finally {
      await side.close();
    }
  }
  out.push('| queue | jobs | worker concurrency | enqueue jobs/s | drain jobs/s | pickup p50 ms | pickup p99 ms | pickup max ms |', '|---|--:|--:|--:|--:|--:|--:|--:|');
  for (const r of results) {
    const drained = r.drained < r.jobs ? ` (${r.drained} of ${r.jobs} in ${DRAIN_LIMIT_MS / 1000} s)` : '';
    out.push(`| ${r.name} | ${r.jobs} | ${r.concurrency} | ${r.enqueuePerSec.toFixed(0)} | ${r.drainPerSec.toFixed(0)}${drained} | ${r.p50.toFixed(2)} | ${r.p99.toFixed(2)} | ${r.max.toFixed(2)} |`);
  }
  const bull = results.find((r) => r.name.startsWith('BullMQ'));
  const p99s = results.map((r) => `${r.name}: ${r.p99 < 50 ? 'met' : 'NOT met'}`).join('; ');
  out.push('', `Targets: ≥ 2,000 jobs/s on BullMQ (${bull ? `${bull.drainPerSec.toFixed(0)}, ${bull.drainPerSec >= 2000 ? 'met' : 'NOT met'}` : 'not run'}); pickup p99 < 50 ms (${p99s}).`);
  out.push(`Load average at the end: ${loadavg()[0]!.toFixed(1)}.`);
  process.stdout.write(out.join('\n') + '\n');
}

await main();
