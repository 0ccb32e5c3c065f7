import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, describe, test } from 'node:test';
import { eq, sql } from 'drizzle-orm';
import { openDatabase, type Database } from '../../src/platform/db/database.ts';
import { createLogger } from '../../src/platform/observability/logger.ts';
import { bullmqQueue } from '../../src/platform/queue/bullmq-queue.ts';
import { dbQueue } from '../../src/platform/queue/db-queue.ts';
import type { JobQueue } from '../../src/platform/queue/queue.ts';
import { jobs, jobSchedules } from '../../src/platform/queue/schema.ts';
import { createScheduler, type Scheduler } from '../../src/platform/scheduler/scheduler.ts';
import { freshPostgresDatabase } from '../support/app.ts';
import { eventually } from '../support/eventually.ts';
import { dropRedisKeys } from '../support/redis.ts';
import { closeSharedPglite, sharedPglite } from '../support/pglite-snapshot.ts';

const logger = createLogger(process.env.TEST_LOG_LEVEL ?? 'silent');
const EVERY_SECOND = '* * * * * *';

/** Two worker "processes" (a queue and a scheduler each) over one store, as a cluster runs them. */
interface Cluster {
  kind: 'embedded' | 'bullmq';
  /** The database the first process uses (the one the assertions read). */
  database: Database;
  nodes: Array<{ queue: JobQueue; scheduler: Scheduler }>;
  close(): Promise<void>;
}

after(() => closeSharedPglite());

async function cluster(side: 'pglite' | 'postgres' | 'bullmq'): Promise<Cluster> {
  if (side === 'pglite') {
    // One embedded process holds the PGlite database: two queue/scheduler pairs share it.
    const database = await sharedPglite();
    const nodes = [0, 1].map(() => {
      const queue = dbQueue({ db: database.db, logger, pollMs: 50, closeTimeoutMs: 200 });
      return { queue, scheduler: createScheduler({ queue, db: database.db, logger }) };
    });
    return {
      kind: 'embedded',
      database,
      nodes,
      async close() {
        await shutdown(nodes, []);
        await database.db.execute(sql`truncate jobs, job_outbox, job_schedules`);
      },
    };
  }
  const fresh = await freshPostgresDatabase();
  const databases = [0, 1].map(() => openDatabase({ url: fresh.url, dataDir: 'memory://' }));
  await databases[0]!.migrate();
  const prefix = `parley:test:${randomBytes(6).toString('hex')}:`;
  const nodes = databases.map((database) => {
    const common = { db: database.db, logger, listenUrl: fresh.url, closeTimeoutMs: 200 };
    const queue = side === 'bullmq' ? bullmqQueue({ ...common, redisUrl: process.env.REDIS_URL!, redisPrefix: prefix }) : dbQueue({ ...common, pollMs: 50 });
    return { queue, scheduler: createScheduler({ queue, db: database.db, logger }) };
  });
  return {
    kind: side === 'bullmq' ? 'bullmq' : 'embedded',
    database: databases[0]!,
    nodes,
    async close() {
      await shutdown(nodes, databases);
      await fresh.drop();
      if (side === 'bullmq') await dropRedisKeys(prefix);
    },
  };
}

async function shutdown(nodes: Cluster['nodes'], databases: Database[]) {
  for (const n of nodes) await n.scheduler.close();
  for (const n of nodes) await n.queue.close();
  for (const d of databases) await d.close();
}


const sides = [
  { name: 'embedded, two workers on one PGlite', side: 'pglite' as const },
  { name: 'embedded, two workers on PostgreSQL', side: 'postgres' as const, skip: !process.env.DATABASE_URL && 'DATABASE_URL not set' },
  { name: 'BullMQ job schedulers, two workers', side: 'bullmq' as const, skip: (!process.env.REDIS_URL || !process.env.DATABASE_URL) && 'REDIS_URL or DATABASE_URL not set' },
];

for (const { name, side, skip } of sides) {
  describe(`scheduler [${name}]`, { skip }, () => {
    test('an every-second cron defined on every worker: each firing runs once across the cluster', async () => {
      const c = await cluster(side);
      try {
        const runs: string[] = [];
        for (const { queue, scheduler } of c.nodes) {
          scheduler.define({ name: 'tick', cron: EVERY_SECOND, data: { from: 'cron' }, handler: async (data, ctx) => void runs.push(`${ctx.id} ${JSON.stringify(data)}`) });
          assert.deepEqual(
            (await scheduler.list()).map((s) => ({ ...s, nextRunAt: s.nextRunAt instanceof Date })),
            [{ name: 'tick', cron: EVERY_SECOND, timezone: 'UTC', queue: 'tick', nextRunAt: true, lastRunAt: null }],
          );
        }
        for (const { queue, scheduler } of c.nodes) {
          await queue.start();
          await scheduler.start();
        }
        await eventually(() => assert.ok(runs.length >= 3, `${runs.length} runs so far`), 15_000);
        for (const n of c.nodes) await n.scheduler.close();
        if (c.kind === 'embedded') {
          // What was enqueued before the stop finishes, then the count is final.
          await eventually(async () => {
            const states = await c.database.db.select({ state: jobs.state }).from(jobs).where(eq(jobs.queue, 'tick'));
            assert.ok(states.every((r) => r.state === 'completed'));
          }, 5000);
        }
        // BullMQ's job schedulers live on in Redis: they stop firing here only because the workers stop.
        const [info] = await c.nodes[1]!.scheduler.list();
        for (const n of c.nodes) await n.queue.close();

        const ids = runs.map((r) => r.split(' ')[0]!);
        assert.equal(new Set(ids).size, ids.length, `a firing ran twice: ${ids.join(', ')}`);
        assert.ok(runs.every((r) => r.endsWith('{"from":"cron"}')));

        let firings: Date[];
        if (c.kind === 'embedded') {
          const rows = await c.database.db.select().from(jobs).where(eq(jobs.queue, 'tick'));
          assert.deepEqual(rows.map((r) => r.id).sort(), [...ids].sort(), 'every enqueued firing ran, once');
          firings = rows.map((r) => new Date(r.idempotencyKey!.replace('schedule:tick:', '')));
          for (const [i, row] of rows.entries()) {
            assert.ok(row.createdAt.getTime() >= firings[i]!.getTime(), `firing ${firings[i]!.toISOString()} was enqueued early, at ${row.createdAt.toISOString()}`);
          }
        } else {
          // A job scheduler's job id ends with its firing time.
          firings = ids.map((id) => new Date(Number(/^repeat:.*:(\d+)$/.exec(id)?.[1])));
        }
        const seconds = firings.map((f) => f.getTime());
        assert.ok(seconds.every((t) => t % 1000 === 0), `a firing is named by its whole second: ${firings.map((f) => f.toISOString()).join(', ')}`);
        assert.equal(new Set(seconds).size, seconds.length, 'one job per firing time');

        assert.ok(info!.lastRunAt, 'lastRunAt, seen from the other worker');
        if (c.kind === 'embedded') assert.equal(info!.lastRunAt.getTime(), Math.max(...seconds), 'lastRunAt is the latest firing');
        else assert.ok(seconds.includes(info!.lastRunAt.getTime()), 'lastRunAt is a firing that ran');
        assert.ok(info!.nextRunAt && info!.nextRunAt.getTime() > info!.lastRunAt.getTime());
      } finally {
        await c.close();
      }
    });

    test('a schedule can feed a queue whose handler is defined elsewhere', async () => {
      const c = await cluster(side);
      try {
        const [{ queue, scheduler }] = c.nodes as [Cluster['nodes'][0]];
        const seen: unknown[] = [];
        queue.process('digest.send', async (data) => void seen.push(data));
        scheduler.define({ name: 'daily-digest-test', cron: EVERY_SECOND, queue: 'digest.send', data: { kind: 'digest' }, jobOptions: { attempts: 1 } });
        await queue.start();
        await scheduler.start();
        await eventually(() => assert.ok(seen.length >= 1), 10_000);
        assert.deepEqual(seen[0], { kind: 'digest' });
        const [info] = await scheduler.list();
        assert.equal(info!.queue, 'digest.send');
      } finally {
        await c.close();
      }
    });

    test('a schedule the code no longer defines stops firing, even one BullMQ kept in Redis', async () => {
      const c = await cluster(side);
      try {
        const [first, second] = c.nodes as [Cluster['nodes'][0], Cluster['nodes'][0]];
        const runs: string[] = [];
        first.scheduler.define({ name: 'retired', cron: EVERY_SECOND, handler: async (_d, ctx) => void runs.push(ctx.id) });
        await first.queue.start();
        await first.scheduler.start();
        await eventually(() => assert.ok(runs.length >= 1), 10_000);
        await first.scheduler.close();
        // The next version of the code: the same worker queue, a scheduler without it.
        second.queue.process('retired', async (_d, ctx) => void runs.push(`after:${ctx.id}`));
        await second.queue.start();
        await second.scheduler.start();
        const rows = await c.database.db.select().from(jobSchedules);
        assert.deepEqual(rows.map((r) => r.name), [], 'its row is gone');
        // A firing already under way may still finish; after that, nothing more.
        await new Promise((r) => setTimeout(r, 1_200));
        const settled = runs.length;
        await new Promise((r) => setTimeout(r, 2_500));
        assert.deepEqual(runs.slice(settled), [], 'no firing after it was retired');
        assert.deepEqual(await second.scheduler.list(), []);
      } finally {
        await c.close();
      }
    });

    test('a bad definition throws at define()', async () => {
      const c = await cluster(side);
      try {
        const { scheduler } = c.nodes[0]!;
        const noop = async () => {};
        assert.throws(() => scheduler.define({ name: 'bad', cron: '61 * * * *', handler: noop }), /CronPattern|minute/i);
        assert.throws(() => scheduler.define({ name: 'bad', cron: 'every day', handler: noop }), /CronPattern/);
        assert.throws(() => scheduler.define({ name: 'bad', cron: '0 9 * * *', timezone: 'Mars/Olympus', handler: noop }), /timezone/i);
        assert.throws(() => scheduler.define({ name: 'bad', cron: '0 9 * * *' }), /either a handler or a queue/);
        scheduler.define({ name: 'good', cron: '0 9 * * 1-5', timezone: 'Europe/Paris', handler: noop });
        assert.throws(() => scheduler.define({ name: 'good', cron: '0 9 * * *', handler: noop }), /already defined/);
        const [info] = await scheduler.list();
        assert.equal(info!.timezone, 'Europe/Paris');
        assert.equal(info!.nextRunAt!.getUTCMinutes(), 0);
      } finally {
        await c.close();
      }
    });
  });
}
