import { and, desc, eq, gt, lt, lte, ne, sql, type SQL } from 'drizzle-orm';
import { Conflict, NotFound } from '../../errors.ts';
import type { Db } from '../db/database.ts';
import type { Logger } from '../observability/logger.ts';
import { listenPostgres } from './pg-listen.ts';
import {
  assertQueueName,
  backoffDelay,
  DEFAULTS,
  errorMessage,
  runAttempt,
  type EnqueueOptions,
  type Job,
  type JobHandler,
  type JobProgress,
  type JobQueue,
  type ListQuery,
  type ProcessOptions,
} from './queue.ts';
import { jobs } from './schema.ts';

type Row = typeof jobs.$inferSelect;

const CHANNEL = 'parley_jobs';
/** A worker that stops answering for this long past its job's timeout loses the job to another. */
const LEASE_MARGIN_MS = 30_000;

export interface DbQueueOptions {
  db: Db;
  logger: Logger;
  /** When set (PostgreSQL), enqueues NOTIFY and workers LISTEN, so other processes pick jobs up at once. */
  listenUrl?: string;
  pollMs?: number;
  /** How long close() waits for running jobs. */
  closeTimeoutMs?: number;
}

/** The durable queue in the database: rows claimed with FOR UPDATE SKIP LOCKED, on PGlite and PostgreSQL alike. */
export function dbQueue(opts: DbQueueOptions): JobQueue {
  const { db, logger } = opts;
  const pollMs = opts.pollMs ?? 250;
  const runners = new Map<string, Runner>();
  let started = false;
  let closing = false;
  let poll: NodeJS.Timeout | undefined;
  let listener: ReturnType<typeof listenPostgres> | undefined;

  const notify = (tx: Db, queue: string) => (opts.listenUrl ? tx.execute(sql`select pg_notify(${CHANNEL}, ${queue})`) : undefined);

  async function claim(queue: string, leaseMs: number): Promise<Row | undefined> {
    const next = sql`(select id from ${jobs} where ${jobs.queue} = ${queue} and ${jobs.state} = 'waiting' and ${jobs.runAt} <= now()
                      order by ${jobs.priority}, ${jobs.runAt}, ${jobs.id} limit 1 for update skip locked)`;
    const [row] = await db
      .update(jobs)
      .set({ state: 'active', attempts: sql`${jobs.attempts} + 1`, startedAt: sql`now()`, lockedUntil: sql`now() + ${`${leaseMs} milliseconds`}::interval` })
      .where(eq(jobs.id, next))
      .returning();
    return row;
  }

  /** Jobs whose worker died (lease expired): back to waiting, or dead if that was the last attempt. */
  async function reclaim() {
    const lost = await db
      .update(jobs)
      .set({
        state: sql`case when ${jobs.attempts} >= ${jobs.maxAttempts} then 'dead' else 'waiting' end`,
        lastError: 'The worker running this job stopped answering',
        runAt: sql`now()`,
        lockedUntil: null,
        finishedAt: sql`case when ${jobs.attempts} >= ${jobs.maxAttempts} then now() end`,
      })
      .where(and(eq(jobs.state, 'active'), lt(jobs.lockedUntil, sql`now()`)))
      .returning({ id: jobs.id, queue: jobs.queue });
    if (lost.length) logger.warn({ jobs: lost.map((j) => j.id) }, 'reclaimed jobs of a lost worker');
  }

  class Runner {
    readonly queue: string;
    readonly handler: JobHandler;
    readonly concurrency: number;
    readonly timeoutMs: number;
    readonly running = new Map<string, { done: Promise<void>; abort: AbortController }>();
    pumping = false;
    again = false;

    constructor(queue: string, handler: JobHandler, o: ProcessOptions) {
      this.queue = queue;
      this.handler = handler;
      this.concurrency = o.concurrency ?? DEFAULTS.concurrency;
      this.timeoutMs = o.timeoutMs ?? DEFAULTS.timeoutMs;
    }

    /** Claims jobs until the queue is empty or every slot is busy; calls made meanwhile run it again. */
    async pump(): Promise<void> {
      if (this.pumping) {
        this.again = true;
        return;
      }
      this.pumping = true;
      try {
        do {
          this.again = false;
          while (started && !closing && this.running.size < this.concurrency) {
            const row = await claim(this.queue, (this.timeoutMs ?? 0) + LEASE_MARGIN_MS);
            if (!row) break;
            this.run(row);
          }
        } while (this.again && !closing);
      } catch (err) {
        if (!closing) logger.error({ err, queue: this.queue }, 'claiming a job failed');
      } finally {
        this.pumping = false;
      }
    }

    run(row: Row) {
      const abort = new AbortController();
      const timeoutMs = row.timeoutMs ?? this.timeoutMs;
      const ctx = {
        id: row.id,
        attempt: row.attempts,
        signal: abort.signal,
        progress: async (value: JobProgress) => {
          await db.update(jobs).set({ progress: value }).where(and(eq(jobs.id, row.id), eq(jobs.state, 'active')));
        },
      };
      const done = runAttempt((signal) => this.handler(row.data, { ...ctx, signal }), timeoutMs, abort.signal)
        .then(
          (result) => finish(row, { result: result ?? null }),
          (err) => finish(row, { error: err }),
        )
        .catch((err) => logger.error({ err, jobId: row.id }, 'recording a job outcome failed'))
        .finally(() => {
          this.running.delete(row.id);
          void this.pump();
        });
      this.running.set(row.id, { done, abort });
    }
  }

  async function finish(row: Row, outcome: { result?: unknown; error?: unknown }) {
    // Only the attempt that holds the job may settle it (a reclaimed one belongs to another worker now).
    const mine = and(eq(jobs.id, row.id), eq(jobs.state, 'active'), eq(jobs.attempts, row.attempts));
    if (!('error' in outcome)) {
      await db.update(jobs).set({ state: 'completed', result: outcome.result, lastError: null, finishedAt: sql`now()`, lockedUntil: null }).where(mine);
      return;
    }
    const error = errorMessage(outcome.error);
    if (row.attempts < row.maxAttempts) {
      const delay = backoffDelay(row.attempts, row.backoffMs);
      await db.update(jobs).set({ state: 'waiting', lastError: error, runAt: sql`now() + ${`${delay} milliseconds`}::interval`, lockedUntil: null }).where(mine);
    } else {
      await db.update(jobs).set({ state: 'dead', lastError: error, finishedAt: sql`now()`, lockedUntil: null }).where(mine);
      logger.warn({ jobId: row.id, queue: row.queue, error }, 'job failed its last attempt');
    }
  }

  const nudge = (queue?: string) => {
    if (!started || closing) return;
    if (queue) void runners.get(queue)?.pump();
    else for (const r of runners.values()) void r.pump();
  };

  const toJob = (row: Row): Job => ({
    id: row.id,
    queue: row.queue,
    state: row.state === 'waiting' && row.runAt.getTime() > Date.now() ? 'delayed' : row.state,
    data: row.data,
    userId: row.userId,
    priority: row.priority,
    attempts: row.attempts,
    maxAttempts: row.maxAttempts,
    progress: row.progress,
    result: row.result ?? null,
    error: row.lastError,
    createdAt: row.createdAt,
    startedAt: row.startedAt,
    finishedAt: row.finishedAt,
  });

  const byId = async (id: string) => (await db.select().from(jobs).where(eq(jobs.id, id)))[0];

  return {
    kind: 'database',

    async enqueue<T>(queue: string, data: T, o: EnqueueOptions = {}): Promise<Job<T>> {
      assertQueueName(queue);
      const tx = o.tx ?? db;
      const values = {
        queue,
        data: data ?? null,
        priority: o.priority ?? 0,
        runAt: o.delayMs ? sql`now() + ${`${Math.round(o.delayMs)} milliseconds`}::interval` : sql`now()`,
        maxAttempts: o.attempts ?? DEFAULTS.attempts,
        backoffMs: o.backoffMs ?? DEFAULTS.backoffMs,
        timeoutMs: o.timeoutMs ?? null,
        userId: o.userId ?? null,
        idempotencyKey: o.idempotencyKey ?? null,
      };
      let [row] = await tx.insert(jobs).values(values).onConflictDoNothing({ target: [jobs.queue, jobs.idempotencyKey] }).returning();
      if (!row) {
        [row] = await tx.select().from(jobs).where(and(eq(jobs.queue, queue), eq(jobs.idempotencyKey, o.idempotencyKey!)));
        return toJob(row!) as Job<T>;
      }
      await notify(tx, queue);
      // Inside a transaction the row is not visible yet: the poll (or the NOTIFY at commit) finds it.
      if (!o.tx && !o.delayMs) nudge(queue);
      return toJob(row) as Job<T>;
    },

    process(queue, handler, o = {}) {
      assertQueueName(queue);
      if (runners.has(queue)) throw new Error(`Queue "${queue}" already has a handler`);
      runners.set(queue, new Runner(queue, handler as JobHandler, o));
      nudge(queue);
    },

    async start() {
      if (started) return;
      started = true;
      if (opts.listenUrl) {
        listener = listenPostgres(opts.listenUrl, CHANNEL, (queue) => nudge(queue || undefined), logger);
        await listener.ready;
      }
      let ticks = 0;
      poll = setInterval(() => {
        nudge();
        // Every ~5 s: take back jobs whose worker died.
        if (++ticks % Math.max(1, Math.round(5000 / pollMs)) === 0) reclaim().catch((err) => logger.error({ err }, 'reclaiming jobs failed'));
      }, pollMs);
      poll.unref();
      await reclaim();
      nudge();
    },

    async get(id) {
      const row = await byId(id);
      return row && toJob(row);
    },

    async list(q: ListQuery) {
      const where: Array<SQL | undefined> = [q.queue ? eq(jobs.queue, q.queue) : undefined];
      if (q.state === 'waiting') where.push(eq(jobs.state, 'waiting'), lte(jobs.runAt, sql`now()`));
      else if (q.state === 'delayed') where.push(eq(jobs.state, 'waiting'), gt(jobs.runAt, sql`now()`));
      else if (q.state) where.push(eq(jobs.state, q.state));
      const after = q.cursor ? Buffer.from(q.cursor, 'base64url').toString('utf8') : undefined;
      if (after && /^[0-9a-f-]{36}$/.test(after)) where.push(lt(jobs.id, after));
      const rows = await db.select().from(jobs).where(and(...where)).orderBy(desc(jobs.id)).limit(q.limit + 1);
      const more = rows.length > q.limit;
      const page = rows.slice(0, q.limit);
      return { jobs: page.map(toJob), nextCursor: more ? Buffer.from(page[page.length - 1]!.id).toString('base64url') : null };
    },

    async retry(id) {
      const [row] = await db
        .update(jobs)
        .set({ state: 'waiting', attempts: 0, runAt: sql`now()`, finishedAt: null })
        .where(and(eq(jobs.id, id), eq(jobs.state, 'dead')))
        .returning();
      if (!row) {
        if (await byId(id)) throw Conflict('Only a dead job can be retried', 'job_not_dead');
        throw NotFound('Job', 'job_not_found');
      }
      nudge(row.queue);
      return toJob(row);
    },

    async discard(id) {
      const gone = await db.delete(jobs).where(and(eq(jobs.id, id), ne(jobs.state, 'active'))).returning({ id: jobs.id });
      if (gone.length) return;
      if (await byId(id)) throw Conflict('A running job cannot be discarded', 'job_active');
      throw NotFound('Job', 'job_not_found');
    },

    async close() {
      if (closing) return;
      closing = true;
      clearInterval(poll);
      await listener?.close();
      const running = [...runners.values()].flatMap((r) => [...r.running.values()]);
      const bounded = new Promise<'late'>((resolve) => setTimeout(() => resolve('late'), opts.closeTimeoutMs ?? 10_000).unref());
      if ((await Promise.race([Promise.all(running.map((r) => r.done)), bounded])) === 'late') {
        // Tell the stragglers to stop; their attempts end as failures and retry elsewhere.
        for (const r of running) r.abort.abort(new Error('The worker shut down'));
        await Promise.race([Promise.all(running.map((r) => r.done)), new Promise((r) => setTimeout(r, 1000).unref())]);
      }
    },
  };
}
