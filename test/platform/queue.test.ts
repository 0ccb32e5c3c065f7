import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { sql } from 'drizzle-orm';
import { uuidv7 } from 'uuidv7';
import { inTransaction, openDatabase, type Database, type Db } from '../../src/platform/db/database.ts';
import { createLogger } from '../../src/platform/observability/logger.ts';
import { bullmqQueue } from '../../src/platform/queue/bullmq-queue.ts';
import { dbQueue } from '../../src/platform/queue/db-queue.ts';
import { FinalJobError, type Job, type JobContext, type JobQueue } from '../../src/platform/queue/queue.ts';
import { freshPostgresDatabase } from '../support/app.ts';
import { eventually } from '../support/eventually.ts';
import { dropRedisKeys } from '../support/redis.ts';
import { closeSharedPglite, sharedPglite } from '../support/pglite-snapshot.ts';

const logger = createLogger(process.env.TEST_LOG_LEVEL ?? 'silent');
/** Short enough that lost workers and stalled jobs are noticed within a test. */
const LOCK_MS = 1000;

/** One backing store (a database, and Redis for BullMQ) that any number of queue instances — "processes" — share. */
interface Store {
  db: Db;
  /** Set when other processes can reach the store (PostgreSQL, Redis). */
  shared?: { dbUrl: string; redisPrefix?: string };
  queue(): JobQueue;
  /** Closes every queue instance and the database, then opens the database again: a restart. */
  restart(): Promise<void>;
  close(): Promise<void>;
}

interface Side {
  name: string;
  skip?: string | false;
  open(o?: { persistent?: boolean }): Promise<Store>;
  /** After the suite: what the side kept open across tests. */
  dispose?(): Promise<void>;
}


function storeOver(opened: { open(): Database; dbUrl?: string; redisPrefix?: string; cleanup(): Promise<void> }): Store {
  let database = opened.open();
  const queues: JobQueue[] = [];
  const closeQueues = async () => {
    for (const q of queues.splice(0)) await q.close();
  };
  const store: Store = {
    db: database.db,
    shared: opened.dbUrl ? { dbUrl: opened.dbUrl, redisPrefix: opened.redisPrefix } : undefined,
    queue() {
      const common = { db: database.db, logger, listenUrl: opened.dbUrl, closeTimeoutMs: 200, lockMs: LOCK_MS };
      const q = opened.redisPrefix
        ? bullmqQueue({ ...common, redisUrl: process.env.REDIS_URL!, redisPrefix: opened.redisPrefix })
        : dbQueue({ ...common, pollMs: 50 });
      queues.push(q);
      return q;
    },
    async restart() {
      await closeQueues();
      await database.close();
      database = opened.open();
      store.db = database.db;
    },
    async close() {
      await closeQueues();
      await database.close();
      await opened.cleanup();
    },
  };
  return store;
}


async function postgresStore(redis: boolean): Promise<Store> {
  const fresh = await freshPostgresDatabase();
  const first = openDatabase({ url: fresh.url, dataDir: 'memory://' });
  await first.migrate();
  await first.close();
  const redisPrefix = redis ? `parley:test:${randomBytes(6).toString('hex')}:` : undefined;
  return storeOver({
    open: () => openDatabase({ url: fresh.url, dataDir: 'memory://' }),
    dbUrl: fresh.url,
    redisPrefix,
    async cleanup() {
      await fresh.drop();
      if (redisPrefix) await dropRedisKeys(redisPrefix);
    },
  });
}

const sides: Side[] = [
  {
    name: 'database queue on PGlite',
    async open(o = {}) {
      if (!o.persistent) {
        const database = await sharedPglite();
        return storeOver({
          // In memory the database lives as long as its one instance: a "restart" keeps it.
          open: () => ({ ...database, close: async () => {} }),
          cleanup: async () => void (await database.db.execute(sql`truncate jobs, job_outbox, job_schedules`)),
        });
      }
      const dir = mkdtempSync(path.join(tmpdir(), 'parley-queue-'));
      const first = openDatabase({ dataDir: dir });
      await first.migrate();
      await first.close();
      return storeOver({ open: () => openDatabase({ dataDir: dir }), cleanup: async () => rmSync(dir, { recursive: true, force: true }) });
    },
    dispose: () => closeSharedPglite(),
  },
  {
    name: 'database queue on PostgreSQL',
    skip: !process.env.DATABASE_URL && 'DATABASE_URL not set',
    open: () => postgresStore(false),
  },
  {
    name: 'BullMQ on Redis + PostgreSQL',
    skip: (!process.env.REDIS_URL || !process.env.DATABASE_URL) && 'REDIS_URL or DATABASE_URL not set',
    open: () => postgresStore(true),
  },
];

/** Opens a store for one test and always closes it. */
async function using(side: Side, fn: (s: Store) => Promise<void>, o?: { persistent?: boolean }) {
  const store = await side.open(o);
  try {
    await fn(store);
  } finally {
    await store.close();
  }
}

function gate() {
  let open!: () => void;
  const opened = new Promise<void>((r) => (open = r));
  return { open, opened };
}

const never = () => new Promise<never>(() => {});

async function settled(queue: JobQueue, id: string, state: 'completed' | 'dead' = 'completed', timeoutMs = 8000): Promise<Job> {
  return eventually(async () => {
    const job = await queue.get(id);
    assert.equal(job?.state, state, `job ${id} is ${job?.state}, last error ${job?.error}`);
    return job!;
  }, timeoutMs);
}

/** A worker process of its own on the shared store, killed with SIGKILL in the middle of a job. */
function crashingWorker(side: Side, shared: NonNullable<Store['shared']>, queueName: string): { child: ChildProcess; started: Promise<string> } {
  const src = (file: string) => JSON.stringify(new URL(`../../src/${file}`, import.meta.url).href);
  const code = `
    import { openDatabase } from ${src('platform/db/database.ts')};
    import { createLogger } from ${src('platform/observability/logger.ts')};
    import { dbQueue } from ${src('platform/queue/db-queue.ts')};
    import { bullmqQueue } from ${src('platform/queue/bullmq-queue.ts')};
    const p = ${JSON.stringify({ ...shared, redisUrl: process.env.REDIS_URL, queueName, lockMs: LOCK_MS })};
    const { db } = openDatabase({ url: p.dbUrl, dataDir: 'memory://' });
    const common = { db, logger: createLogger('silent'), listenUrl: p.dbUrl, lockMs: p.lockMs };
    const queue = p.redisPrefix ? bullmqQueue({ ...common, redisUrl: p.redisUrl, redisPrefix: p.redisPrefix }) : dbQueue({ ...common, pollMs: 50 });
    queue.process(p.queueName, async (_data, ctx) => {
      process.send({ started: ctx.id });
      await new Promise(() => {});
    });
    await queue.start();
  `;
  const child = spawn(process.execPath, ['--input-type=module', '-e', code], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const started = new Promise<string>((resolve, reject) => {
    child.on('message', (m: { started?: string }) => m.started && resolve(m.started));
    child.on('exit', (code) => reject(new Error(`${side.name}: the worker process exited (${code}) before starting the job`)));
  });
  return { child, started };
}

for (const side of sides) {
  describe(`job queue [${side.name}]`, { skip: side.skip }, () => {
    after(async () => side.dispose?.());
    if (side.name.startsWith('database')) {
      test('with the poll a minute off, jobs beyond the free slots run as slots free, and a failure due again at once runs again', async () => {
        await using(side, async (s) => {
          const queue = dbQueue({ db: s.db, logger, lockMs: LOCK_MS, pollMs: 60_000, closeTimeoutMs: 200, listenUrl: s.shared?.dbUrl });
          try {
            const ran: number[] = [];
            let failOnce = true;
            queue.process('backlog.run', async (data: { n: number }) => {
              if (data.n === 2 && failOnce) {
                failOnce = false;
                throw new Error('once');
              }
              ran.push(data.n);
              await sleep(5);
            }, { concurrency: 2 });
            let tries = 0;
            queue.process('retry.once', async () => {
              if (++tries === 1) throw new Error('once');
            }, { concurrency: 2 });
            await queue.start();
            const ids = await queue.enqueueMany('backlog.run', [1, 2, 3, 4, 5, 6, 7].map((n) => ({ n })), { attempts: 2, backoffMs: 0 });
            for (const id of ids) await settled(queue, id, 'completed', 5_000);
            assert.deepEqual(ran.toSorted(), [1, 2, 3, 4, 5, 6, 7]);
            // Alone in its queue (the claim found no more): the retry still runs at once.
            const alone = await queue.enqueue('retry.once', {}, { attempts: 2, backoffMs: 0 });
            assert.equal((await settled(queue, alone.id, 'completed', 5_000)).attempts, 2);
          } finally {
            await queue.close();
          }
        });
      });
    }

    test('enqueue → process → completed, with its result and the job context', async () => {
      await using(side, async (s) => {
        const queue = s.queue();
        const seen: Array<{ data: unknown; ctx: Omit<JobContext, 'signal' | 'progress'> }> = [];
        queue.process('mail.send', async (data: { to: string }, ctx) => {
          const { signal: _s, progress: _p, ...rest } = ctx;
          seen.push({ data, ctx: rest });
          return { sent: data.to };
        });
        await queue.start();
        const userId = '0190a5e0-0000-7000-8000-000000000001';
        const job = await queue.enqueue('mail.send', { to: 'a@example.com' }, { userId, attempts: 5 });
        assert.equal(job.queue, 'mail.send');
        assert.ok(['waiting', 'active', 'completed'].includes(job.state));
        const done = await settled(queue, job.id);
        assert.deepEqual(done.result, { sent: 'a@example.com' });
        assert.deepEqual(done.data, { to: 'a@example.com' });
        assert.equal(done.userId, userId);
        assert.equal(done.attempts, 1);
        assert.equal(done.maxAttempts, 5);
        assert.equal(done.error, null);
        assert.ok(done.startedAt && done.finishedAt && done.finishedAt >= done.startedAt);
        assert.deepEqual(seen, [{ data: { to: 'a@example.com' }, ctx: { id: job.id, queue: 'mail.send', userId, attempt: 1, maxAttempts: 5 } }]);
        assert.equal(await queue.get('0190a5e0-0000-7000-8000-0000000000ff'), undefined);
      });
    });

    test('concurrency per queue: N at once, never more', async () => {
      await using(side, async (s) => {
        const queue = s.queue();
        const release = gate();
        const running: Record<string, number> = { wide: 0, narrow: 0 };
        const peak: Record<string, number> = { wide: 0, narrow: 0 };
        const handler = (name: string) => async () => {
          peak[name] = Math.max(peak[name]!, ++running[name]!);
          await release.opened;
          running[name]!--;
        };
        queue.process('wide', handler('wide'), { concurrency: 3 });
        queue.process('narrow', handler('narrow'), { concurrency: 1 });
        const ids = [];
        for (let i = 0; i < 8; i++) ids.push((await queue.enqueue('wide', { i })).id, (await queue.enqueue('narrow', { i })).id);
        await queue.start();
        await eventually(() => assert.deepEqual(running, { wide: 3, narrow: 1 }));
        await sleep(300); // room for a wrongly taken extra job to show up
        assert.deepEqual(running, { wide: 3, narrow: 1 });
        release.open();
        for (const id of ids) await settled(queue, id);
        assert.deepEqual(peak, { wide: 3, narrow: 1 });
      });
    });

    test('a failing job is retried with exponential backoff, then succeeds', async () => {
      await using(side, async (s) => {
        const queue = s.queue();
        const tries: Array<{ attempt: number; at: number }> = [];
        queue.process('flaky', async (_d, ctx) => {
          tries.push({ attempt: ctx.attempt, at: Date.now() });
          if (ctx.attempt < 3) throw new Error(`boom ${ctx.attempt}`);
          return 'ok';
        });
        await queue.start();
        const job = await queue.enqueue('flaky', null, { attempts: 4, backoffMs: 100 });
        const done = await settled(queue, job.id);
        assert.equal(done.result, 'ok');
        assert.equal(done.attempts, 3);
        assert.equal(done.error, null, 'a completed job carries no error');
        assert.deepEqual(tries.map((t) => t.attempt), [1, 2, 3]);
        // Jitter keeps each wait between half and all of 100 ms · 2^(n−1).
        assert.ok(tries[1]!.at - tries[0]!.at >= 50 - 5, `first retry after ${tries[1]!.at - tries[0]!.at} ms`);
        assert.ok(tries[2]!.at - tries[1]!.at >= 100 - 5, `second retry after ${tries[2]!.at - tries[1]!.at} ms`);
      });
    });

    test('exhausted attempts → dead with the last error; retry runs it again; discard removes it', async () => {
      await using(side, async (s) => {
        const queue = s.queue();
        let healthy = false;
        queue.process('fragile', async (d: { n: number }, ctx) => {
          if (!healthy) throw new Error(`failure ${d.n}.${ctx.attempt}`);
          return ctx.attempt;
        });
        await queue.start();
        const a = await queue.enqueue('fragile', { n: 1 }, { attempts: 2, backoffMs: 20 });
        const b = await queue.enqueue('fragile', { n: 2 }, { attempts: 1 });
        const deadA = await settled(queue, a.id, 'dead');
        assert.match(deadA.error!, /failure 1\.2/);
        assert.equal(deadA.attempts, 2);
        await settled(queue, b.id, 'dead');
        const listed = await queue.list({ state: 'dead', limit: 10 });
        assert.deepEqual(listed.jobs.map((j) => j.id).sort(), [a.id, b.id].sort());

        await assert.rejects(queue.retry('0190a5e0-0000-7000-8000-0000000000ff'), { code: 'job_not_found' });
        healthy = true;
        const retried = await queue.retry(a.id);
        assert.equal(retried.id, a.id);
        assert.ok(['waiting', 'active', 'completed'].includes(retried.state), retried.state);
        const done = await settled(queue, a.id);
        assert.equal(done.result, 1, 'attempts start again from 1');
        assert.equal(done.attempts, 1);
        await assert.rejects(queue.retry(a.id), { code: 'job_not_dead' });

        await queue.discard(b.id);
        assert.equal(await queue.get(b.id), undefined);
        await assert.rejects(queue.discard(b.id), { code: 'job_not_found' });
        assert.deepEqual((await queue.list({ state: 'dead', limit: 10 })).jobs, []);
      });
    });

    test('a FinalJobError kills the job at once, whatever attempts it had left', async () => {
      await using(side, async (s) => {
        const queue = s.queue();
        let runs = 0;
        queue.process('refused', async () => {
          runs++;
          throw new FinalJobError('the provider refuses this request');
        });
        await queue.start();
        const job = await queue.enqueue('refused', {}, { attempts: 5, backoffMs: 20 });
        const dead = await settled(queue, job.id, 'dead');
        assert.equal(dead.attempts, 1);
        assert.equal(dead.error, 'the provider refuses this request');
        assert.equal(runs, 1);
      });
    });

    test('an error or result PostgreSQL cannot hold (a NUL, a lone surrogate) is stored without it, and the job settles', { skip: side.name.startsWith('BullMQ') && 'BullMQ keeps errors and results in Redis' }, async () => {
      await using(side, async (s) => {
        const queue = s.queue();
        let runs = 0;
        queue.process('nul.fail', async () => {
          runs++;
          throw new Error('bad\0byte \ud800');
        });
        queue.process('nul.done', async () => ({ text: 'ok\0done', 'k\0ey': '\udc00', n: 1 }));
        await queue.start();
        const failing = await queue.enqueue('nul.fail', null, { attempts: 2, backoffMs: 10 });
        const done = await queue.enqueue('nul.done', null);
        // Retried once, then dead: both writes of its error went through.
        const dead = await settled(queue, failing.id, 'dead');
        assert.equal(dead.error, 'badbyte \uFFFD');
        assert.deepEqual([dead.attempts, runs], [2, 2]);
        const completed = await settled(queue, done.id);
        assert.deepEqual(completed.result, { text: 'okdone', key: '\uFFFD', n: 1 });
        assert.equal(completed.attempts, 1);
      });
    });

    test('priorities: lower runs first, equal ones in order', async () => {
      await using(side, async (s) => {
        const queue = s.queue();
        const order: string[] = [];
        queue.process('ranked', async (d: { name: string }) => void order.push(d.name));
        const plan: Array<[string, number]> = [['p5', 5], ['p1a', 1], ['p0a', 0], ['p3', 3], ['p1b', 1], ['p0b', 0]];
        const ids = [];
        for (const [name, priority] of plan) ids.push((await queue.enqueue('ranked', { name }, { priority })).id);
        await queue.start();
        for (const id of ids) await settled(queue, id);
        assert.deepEqual(order, ['p0a', 'p0b', 'p1a', 'p1b', 'p3', 'p5']);
      });
    });

    test('a delayed job does not run before its delay', async () => {
      await using(side, async (s) => {
        const queue = s.queue();
        const ran = new Map<string, number>();
        queue.process('later', async (_d, ctx) => void ran.set(ctx.id, Date.now()));
        await queue.start();
        const before = Date.now();
        const delayed = await queue.enqueue('later', null, { delayMs: 400 });
        const now = await queue.enqueue('later', null);
        assert.equal(delayed.state, 'delayed');
        assert.equal((await queue.get(delayed.id))!.state, 'delayed');
        await settled(queue, now.id);
        await settled(queue, delayed.id);
        assert.ok(ran.get(delayed.id)! - before >= 400 - 10, `ran after ${ran.get(delayed.id)! - before} ms`);
      });
    });

    test('a timeout fails the attempt and frees the slot, even if the handler never settles', async () => {
      await using(side, async (s) => {
        const queue = s.queue();
        const aborted: string[] = [];
        queue.process(
          'stuck',
          async (d: { hang: boolean }, ctx) => {
            if (!d.hang) return 'fine';
            ctx.signal.addEventListener('abort', () => aborted.push(`${ctx.attempt}:${(ctx.signal.reason as Error).name}`));
            return never();
          },
          { concurrency: 1, timeoutMs: 60_000 },
        );
        await queue.start();
        const hung = await queue.enqueue('stuck', { hang: true }, { timeoutMs: 150, attempts: 2, backoffMs: 20 });
        const fine = await queue.enqueue('stuck', { hang: false });
        const dead = await settled(queue, hung.id, 'dead');
        assert.match(dead.error!, /timed out after 150 ms/);
        assert.equal(dead.attempts, 2);
        assert.equal((await settled(queue, fine.id)).result, 'fine', 'the one slot was freed for the next job');
        assert.deepEqual(aborted, ['1:JobTimeoutError', '2:JobTimeoutError'], 'the handler is told to stop');
      });
    });

    test('progress is visible through get() while the job runs', async () => {
      await using(side, async (s) => {
        const queue = s.queue();
        const release = gate();
        queue.process('long', async (_d, ctx) => {
          await ctx.progress(40);
          await ctx.progress({ step: 'embedding', done: 3, of: 7 });
          await release.opened;
        });
        await queue.start();
        const job = await queue.enqueue('long', null);
        assert.equal(job.progress, 0);
        await eventually(async () => {
          const now = await queue.get(job.id);
          assert.equal(now!.state, 'active');
          assert.deepEqual(now!.progress, { step: 'embedding', done: 3, of: 7 });
        });
        release.open();
        await settled(queue, job.id);
      });
    });

    test('an idempotency key enqueues a job once per queue', async () => {
      await using(side, async (s) => {
        const queue = s.queue();
        const runs: unknown[] = [];
        queue.process('once', async (d) => void runs.push(d));
        queue.process('other', async () => {});
        const first = await queue.enqueue('once', { n: 1 }, { idempotencyKey: 'conv-1' });
        const again = await Promise.all([2, 3, 4].map((n) => queue.enqueue('once', { n }, { idempotencyKey: 'conv-1' })));
        for (const j of again) assert.equal(j.id, first.id);
        const elsewhere = await queue.enqueue('other', {}, { idempotencyKey: 'conv-1' });
        assert.notEqual(elsewhere.id, first.id, 'the key is per queue');
        await queue.start();
        await settled(queue, first.id);
        const later = await queue.enqueue('once', { n: 5 }, { idempotencyKey: 'conv-1' });
        assert.equal(later.id, first.id);
        assert.equal(later.state, 'completed', 'a finished keyed job is returned, not run again');
        await settled(queue, elsewhere.id);
        await sleep(200);
        assert.deepEqual(runs, [{ n: 1 }]);
      });
    });

    test('purging finished jobs deletes completed ones from before the cutoff, never dead ones', async () => {
      await using(side, async (s) => {
        const queue = s.queue();
        queue.process('purge.ok', async () => 'done');
        queue.process('purge.bad', async () => {
          throw new Error('nope');
        });
        const ok = await queue.enqueue('purge.ok', {}, { idempotencyKey: 'k' });
        const bad = await queue.enqueue('purge.bad', {}, { attempts: 1 });
        await queue.start();
        await settled(queue, ok.id);
        await settled(queue, bad.id, 'dead');
        assert.equal(await queue.purgeFinished(new Date(Date.now() - 60_000)), 0, 'nothing finished that long ago');
        assert.equal((await queue.get(ok.id))?.state, 'completed');
        const purged = await queue.purgeFinished(new Date(Date.now() + 1_000));
        if (queue.kind === 'bullmq') {
          assert.equal(purged, 0, 'BullMQ trims its own');
          assert.equal((await queue.get(ok.id))?.state, 'completed');
        } else {
          assert.equal(purged, 1);
          assert.equal(await queue.get(ok.id), undefined);
          const again = await queue.enqueue('purge.ok', {}, { idempotencyKey: 'k' });
          assert.notEqual(again.id, ok.id, 'the key is free again');
        }
        assert.equal((await queue.get(bad.id))?.state, 'dead', 'dead jobs stay');
      });
    });

    test('enqueue in a transaction: nothing runs if it rolls back; it runs once committed', async () => {
      await using(side, async (s) => {
        const queue = s.queue();
        const runs: string[] = [];
        queue.process('outbox', async (d: { name: string }) => void runs.push(d.name));
        await queue.start();
        let rolledBackId = '';
        await assert.rejects(
          inTransaction(s.db, async (tx) => {
            rolledBackId = (await queue.enqueue('outbox', { name: 'rolled back' }, { tx })).id;
            throw new Error('the business write failed');
          }),
          /business write failed/,
        );
        const committed = await inTransaction(s.db, async (tx) => {
          await tx.execute(sql`select 1`);
          return queue.enqueue('outbox', { name: 'committed' }, { tx, userId: null });
        });
        assert.equal(committed.state, 'waiting');
        await settled(queue, committed.id);
        await sleep(700); // longer than any relay poll
        assert.deepEqual(runs, ['committed']);
        assert.equal(await queue.get(rolledBackId), undefined);
      });
    });

    test('enqueueMany: several jobs in one write, each run once with the shared options; in a rolled-back transaction none', async () => {
      await using(side, async (s) => {
        const queue = s.queue();
        const runs: Array<{ n: number; userId: string | null; maxAttempts: number }> = [];
        queue.process('batch', async (d: { n: number }, ctx) => void runs.push({ n: d.n, userId: ctx.userId, maxAttempts: ctx.maxAttempts }));
        await queue.start();
        const userId = uuidv7();
        await assert.rejects(
          inTransaction(s.db, async (tx) => {
            await queue.enqueueMany('batch', [{ n: -1 }, { n: -2 }], { tx });
            throw new Error('the business write failed');
          }),
          /business write failed/,
        );
        const inTx = await inTransaction(s.db, (tx) => queue.enqueueMany('batch', [{ n: 1 }, { n: 2 }, { n: 3 }], { tx, userId, attempts: 4 }));
        const direct = await queue.enqueueMany('batch', [{ n: 4 }, { n: 5 }], { userId, attempts: 4 });
        assert.equal(new Set([...inTx, ...direct]).size, 5, 'an id per job');
        for (const id of [...inTx, ...direct]) await settled(queue, id);
        assert.deepEqual((await queue.get(inTx[1]!))?.data, { n: 2 }, 'ids in the order given');
        assert.deepEqual(
          runs.map((r) => r.n).sort(),
          [1, 2, 3, 4, 5],
        );
        assert.ok(runs.every((r) => r.userId === userId && r.maxAttempts === 4));
        assert.deepEqual(await queue.enqueueMany('batch', []), []);
        await assert.rejects(queue.enqueueMany('batch', [{ n: 6 }], { attempts: 0 }), /attempts/);
      });
    });

    test("one instance's outbox relay drains, the others stand by; when it closes another takes over", { skip: !side.name.startsWith('BullMQ') && 'the outbox relay is BullMQ’s' }, async () => {
      await using(side, async (s) => {
        // Sessions holding the relay's advisory lock (the LISTEN connections of the instances that drain).
        const holders = async () =>
          Number(((await s.db.execute(sql`select count(*)::int as n from pg_locks where locktype = 'advisory' and granted and database = (select oid from pg_database where datname = current_database()) and ((classid::bigint << 32) | objid::bigint) = ${0x5072_6c79}`)) as unknown as { rows: Array<{ n: number }> }).rows[0]!.n);
        const first = s.queue();
        await eventually(async () => assert.equal(await holders(), 1, 'the first instance leads'));
        const second = s.queue();
        const third = s.queue();
        const runs: number[] = [];
        for (const q of [first, second, third]) q.process('relayed', async (d: { n: number }) => void runs.push(d.n));
        await Promise.all([first, second, third].map((q) => q.start()));
        const before = await Promise.all(Array.from({ length: 20 }, (_, n) => inTransaction(s.db, (tx) => second.enqueue('relayed', { n }, { tx }))));
        for (const job of before) await settled(second, job.id);
        assert.equal(await holders(), 1, 'never more than one');
        await first.close();
        await eventually(async () => assert.equal(await holders(), 1, 'another instance took over'), 5_000);
        const after = await Promise.all(Array.from({ length: 20 }, (_, n) => inTransaction(s.db, (tx) => third.enqueue('relayed', { n: 20 + n }, { tx }))));
        for (const job of after) await settled(third, job.id);
        assert.deepEqual(
          [...runs].sort((a, b) => a - b),
          Array.from({ length: 40 }, (_, n) => n),
          'each job ran once',
        );
      });
    });

    test('jobs survive a restart', async () => {
      await using(
        side,
        async (s) => {
          const before = s.queue();
          const job = await before.enqueue('durable', { keep: true });
          const later = await before.enqueue('durable', { keep: 'delayed' }, { delayMs: 300 });
          await s.restart();
          const after = s.queue();
          const runs: unknown[] = [];
          after.process('durable', async (d) => void runs.push(d));
          assert.equal((await after.get(job.id))?.state, 'waiting');
          await after.start();
          await settled(after, job.id);
          await settled(after, later.id);
          assert.deepEqual(new Set(runs), new Set([{ keep: true }, { keep: 'delayed' }]));
        },
        { persistent: true },
      );
    });

    test('a worker shut down mid-job gives the job back, untried, to another instance', async () => {
      await using(side, async (s) => {
        const first = s.queue();
        const started = gate();
        first.process('handover', async () => {
          started.open();
          return never();
        });
        await first.start();
        const job = await first.enqueue('handover', null, { attempts: 1 });
        await started.opened;
        await first.close(); // gives up on the attempt after closeTimeoutMs
        const back = (await s.queue().get(job.id))!;
        assert.ok(['waiting', 'delayed'].includes(back.state), back.state);
        if (back.error) assert.match(back.error, /shut down/);
        const second = s.queue();
        const attempts: number[] = [];
        second.process('handover', async (_d, ctx) => void attempts.push(ctx.attempt));
        await second.start();
        const done = await settled(second, job.id);
        assert.deepEqual(attempts, [1], 'a shutdown does not use up an attempt: its only one is still there');
        assert.equal(done.error, null);
      });
    });

    test('a worker that dies mid-job (its lease lapses) loses the job to another', async () => {
      await using(side, async (s) => {
        const survivor = s.queue();
        const job = await survivor.enqueue('crash', null, { attempts: 3 });
        let crashed: ChildProcess | undefined;
        if (s.shared) {
          // A real worker process, killed without any chance to clean up.
          const worker = crashingWorker(side, s.shared, 'crash');
          crashed = worker.child;
          assert.equal(await worker.started, job.id);
          worker.child.kill('SIGKILL');
          await new Promise((r) => worker.child.once('exit', r));
        } else {
          // One process only on PGlite: a row as a crashed worker leaves it, its lease run out.
          await s.db.execute(sql`update jobs set state = 'active', attempts = 1, started_at = now(), locked_until = now() - interval '1 second' where id = ${job.id}`);
        }
        assert.equal((await survivor.get(job.id))!.state, 'active');
        let runs = 0;
        survivor.process('crash', async () => void runs++);
        await survivor.start();
        const done = await settled(survivor, job.id, 'completed', 10_000);
        assert.equal(runs, 1);
        assert.equal(done.attempts, 2, 'started twice: on the dead worker, then here');
        crashed?.kill();
      });
    });

    test('list by state and queue, with cursor pagination', async () => {
      await using(side, async (s) => {
        const queue = s.queue();
        const waiting: string[] = [];
        for (const priority of [3, 0, 7, 1, 0, 2, 5]) waiting.push((await queue.enqueue('listed', { priority }, { priority })).id);
        const delayed = [(await queue.enqueue('listed', {}, { delayMs: 60_000 })).id, (await queue.enqueue('listed', {}, { delayMs: 60_000, priority: 4 })).id];
        const elsewhere = (await queue.enqueue('unlisted', {})).id;

        async function all(q: { state?: Job['state']; queue?: string }, limit: number) {
          const ids: string[] = [];
          let cursor: string | undefined;
          for (let page = 0; page < 20; page++) {
            const res = await queue.list({ ...q, limit, cursor });
            assert.ok(res.jobs.length <= limit);
            for (const j of res.jobs) {
              if (q.state) assert.equal(j.state, q.state);
              if (q.queue) assert.equal(j.queue, q.queue);
            }
            ids.push(...res.jobs.map((j) => j.id));
            if (!res.nextCursor) return ids;
            cursor = res.nextCursor;
          }
          throw new Error('pagination does not end');
        }
        const sorted = (xs: string[]) => [...xs].sort();
        for (const limit of [1, 2, 3, 50]) {
          const w = await all({ state: 'waiting', queue: 'listed' }, limit);
          assert.deepEqual(sorted(w), sorted(waiting), `waiting, pages of ${limit}`);
          assert.deepEqual(sorted(await all({ state: 'delayed' }, limit)), sorted(delayed), `delayed, pages of ${limit}`);
          assert.deepEqual(sorted(await all({ queue: 'listed' }, limit)), sorted([...waiting, ...delayed]), `the queue, pages of ${limit}`);
          assert.deepEqual(sorted(await all({}, limit)), sorted([...waiting, ...delayed, elsewhere]), `everything, pages of ${limit}`);
        }
        assert.deepEqual(await all({ state: 'completed' }, 5), []);
        const firstPage = await queue.list({ state: 'waiting', queue: 'listed', limit: 7 });
        assert.equal(firstPage.nextCursor, null, 'an exact last page has no next cursor');
      });
    });

    test('bad input is refused before anything is queued', async () => {
      await using(side, async (s) => {
        const queue = s.queue();
        await assert.rejects(queue.enqueue('Bad Name', {}), /Invalid queue name/);
        await assert.rejects(queue.enqueue('ok', {}, { priority: -1 }), { code: 'validation_failed' });
        await assert.rejects(queue.enqueue('ok', {}, { attempts: 0 }), { code: 'validation_failed' });
        assert.deepEqual((await queue.list({ limit: 10 })).jobs, []);
        queue.process('dup', async () => {});
        assert.throws(() => queue.process('dup', async () => {}), /already has a handler/);
      });
    });
  });
}
