import { Job as BullJob, Queue, Worker, type JobsOptions, type JobType } from 'bullmq';
import { Redis } from 'ioredis';
import { eq } from 'drizzle-orm';
import { uuidv7 } from 'uuidv7';
import { Conflict, NotFound } from '../../errors.ts';
import type { Db } from '../db/database.ts';
import type { Logger } from '../observability/logger.ts';
import { createOutboxRelay, type OutboxOptions } from './outbox-relay.ts';
import {
  assertQueueName,
  DEFAULTS,
  keyedJobId,
  runAttempt,
  type EnqueueOptions,
  type Job,
  type JobHandler,
  type JobQueue,
  type JobState,
  type ListQuery,
  type ProcessOptions,
} from './queue.ts';
import { jobOutbox } from './schema.ts';

/** What a BullMQ job carries: the caller's data, its owner, its own timeout. */
export interface Envelope {
  d: unknown;
  u: string | null;
  t: number | null;
}

/** Finished jobs stay readable (`GET /v1/jobs/{id}`, idempotency keys) for a day; dead ones until discarded. */
const KEEP_COMPLETED = { age: 24 * 3600, count: 10_000 };

const STATE_TYPES: Record<JobState, JobType[]> = {
  waiting: ['waiting', 'prioritized'],
  delayed: ['delayed'],
  active: ['active'],
  completed: ['completed'],
  dead: ['failed'],
};

function stateOf(s: string): JobState | undefined {
  if (s === 'failed') return 'dead';
  if (s === 'prioritized' || s === 'waiting' || s === 'waiting-children') return 'waiting';
  if (s === 'delayed' || s === 'active' || s === 'completed') return s;
  return undefined;
}

export function bullOptions(id: string, o: OutboxOptions): JobsOptions {
  return {
    jobId: id,
    attempts: o.attempts ?? DEFAULTS.attempts,
    backoff: { type: 'exponential', delay: o.backoffMs ?? DEFAULTS.backoffMs, jitter: 0.5 },
    priority: o.priority || undefined,
    delay: o.delayMs || undefined,
    removeOnComplete: KEEP_COMPLETED,
    removeOnFail: false,
  };
}

export interface BullmqQueueOptions {
  redisUrl: string;
  redisPrefix: string;
  db: Db;
  logger: Logger;
  /** PostgreSQL URL: the outbox relay LISTENs there to move committed jobs at once. */
  listenUrl?: string;
  closeTimeoutMs?: number;
}

export interface BullmqJobQueue extends JobQueue {
  /** The BullMQ queue behind a name (the scheduler's job schedulers live on it). */
  bull(name: string): Promise<Queue>;
}

/** BullMQ on Redis; jobs enqueued in a transaction go through the `job_outbox` table and a relay. */
export function bullmqQueue(opts: BullmqQueueOptions): BullmqJobQueue {
  const { db, logger } = opts;
  // Workers block on Redis: BullMQ requires no per-request retry limit on their connections.
  const connection = new Redis(opts.redisUrl, { maxRetriesPerRequest: null });
  connection.on('error', (err) => logger.warn({ err }, 'BullMQ Redis connection error'));
  const prefix = `${opts.redisPrefix}bull`;
  const registry = `${opts.redisPrefix}jobs:queues`;
  const queues = new Map<string, { queue: Queue; registered: Promise<unknown> }>();
  const handlers = new Map<string, { handler: JobHandler; opts: ProcessOptions }>();
  const workers = new Map<string, Worker>();
  let started = false;
  let closing = false;

  function entry(name: string) {
    let e = queues.get(name);
    if (!e) {
      const queue = new Queue(name, { connection, prefix });
      queue.on('error', (err) => logger.warn({ err, queue: name }, 'BullMQ queue error'));
      // Every process can then find a job by id alone, whatever queue it is on.
      e = { queue, registered: connection.sadd(registry, name) };
      queues.set(name, e);
    }
    return e;
  }
  async function bull(name: string) {
    const e = entry(name);
    await e.registered;
    return e.queue;
  }
  async function knownQueues(only?: string): Promise<Queue[]> {
    const names = only ? [only] : (await connection.smembers(registry)).sort();
    return Promise.all(names.map(bull));
  }

  const addBulk = async (name: string, jobs: Array<{ id: string; data: unknown; options: OutboxOptions }>) => {
    const q = await bull(name);
    await q.addBulk(jobs.map((j) => ({ name, data: envelope(j.data, j.options), opts: bullOptions(j.id, j.options) })));
  };
  const relay = createOutboxRelay({ db, logger, listenUrl: opts.listenUrl, add: addBulk });

  function startWorker(name: string) {
    const { handler, opts: o } = handlers.get(name)!;
    const worker = new Worker<Envelope>(
      name,
      async (job, _token, signal) =>
        runAttempt(
          (s) => handler(job.data.d, { id: job.id!, attempt: job.attemptsMade + 1, signal: s, progress: (p) => job.updateProgress(p) }),
          job.data.t ?? o.timeoutMs ?? DEFAULTS.timeoutMs,
          signal,
        ),
      { connection, prefix, concurrency: o.concurrency ?? DEFAULTS.concurrency, autorun: false },
    );
    worker.on('error', (err) => logger.error({ err, queue: name }, 'BullMQ worker error'));
    worker.on('failed', (job, err) => {
      if (job && job.attemptsMade >= (job.opts.attempts ?? 1)) logger.warn({ jobId: job.id, queue: name, error: err.message }, 'job failed its last attempt');
    });
    workers.set(name, worker);
    worker.run().catch((err) => logger.error({ err, queue: name }, 'BullMQ worker stopped'));
  }

  async function find(id: string): Promise<BullJob | undefined> {
    const found = await Promise.all((await knownQueues()).map((q) => BullJob.fromId(q, id)));
    return found.find((j): j is BullJob => Boolean(j));
  }

  async function toJob(job: BullJob, knownState?: JobState): Promise<Job | undefined> {
    const state = knownState ?? stateOf(await job.getState());
    if (!state) return undefined;
    const env = job.data as Partial<Envelope> | undefined;
    return {
      id: job.id!,
      queue: job.queueName,
      state,
      data: env?.d ?? null,
      userId: env?.u ?? null,
      priority: job.opts.priority ?? 0,
      attempts: job.attemptsStarted ?? job.attemptsMade,
      maxAttempts: job.opts.attempts ?? 1,
      progress: (job.progress as Job['progress']) ?? 0,
      result: job.returnvalue ?? null,
      error: state === 'completed' ? null : job.failedReason || null,
      createdAt: new Date(job.timestamp),
      startedAt: job.processedOn ? new Date(job.processedOn) : null,
      finishedAt: job.finishedOn ? new Date(job.finishedOn) : null,
    };
  }

  /** A job still in the outbox (committed, not yet relayed): it reads as waiting. */
  const pending = (row: typeof jobOutbox.$inferSelect): Job => {
    const o = row.options as OutboxOptions;
    return {
      id: row.id,
      queue: row.queue,
      state: 'waiting',
      data: row.data,
      userId: o.userId ?? null,
      priority: o.priority ?? 0,
      attempts: 0,
      maxAttempts: o.attempts ?? DEFAULTS.attempts,
      progress: 0,
      result: null,
      error: null,
      createdAt: row.createdAt,
      startedAt: null,
      finishedAt: null,
    };
  };

  const queue: BullmqJobQueue = {
    kind: 'bullmq',
    bull,

    async enqueue<T>(name: string, data: T, o: EnqueueOptions = {}): Promise<Job<T>> {
      assertQueueName(name);
      const id = o.idempotencyKey ? keyedJobId(name, o.idempotencyKey) : uuidv7();
      const { tx, idempotencyKey: _key, ...rest } = o;
      const options: OutboxOptions = { ...rest, userId: o.userId ?? null };
      if (o.idempotencyKey) {
        const existing = await queue.get(id);
        if (existing) return existing as Job<T>;
      }
      if (tx) {
        const [row] = await tx.insert(jobOutbox).values({ id, queue: name, data: data ?? null, options }).onConflictDoNothing().returning();
        await relay.nudge(tx);
        return pending(row ?? (await tx.select().from(jobOutbox).where(eq(jobOutbox.id, id)))[0]!) as Job<T>;
      }
      const q = await bull(name);
      const job = await q.add(name, envelope(data, options), bullOptions(id, options));
      if (o.idempotencyKey) return ((await toJob(job)) ?? pending({ id, queue: name, data, options, createdAt: new Date() })) as Job<T>;
      return {
        ...pending({ id: job.id!, queue: name, data, options, createdAt: new Date(job.timestamp) }),
        state: o.delayMs ? 'delayed' : 'waiting',
      } as Job<T>;
    },

    process(name, handler, o = {}) {
      assertQueueName(name);
      if (handlers.has(name)) throw new Error(`Queue "${name}" already has a handler`);
      handlers.set(name, { handler: handler as JobHandler, opts: o });
      void bull(name);
      if (started && !closing) startWorker(name);
    },

    async start() {
      if (started) return;
      started = true;
      for (const name of handlers.keys()) startWorker(name);
      await Promise.all([...workers.values()].map((w) => w.waitUntilReady()));
    },

    async get(id) {
      const job = await find(id);
      if (job) return toJob(job);
      const [row] = await db.select().from(jobOutbox).where(eq(jobOutbox.id, id));
      return row && pending(row);
    },

    async list(q: ListQuery) {
      const offset = q.cursor ? Number(Buffer.from(q.cursor, 'base64url').toString('utf8').replace(/^o:/, '')) || 0 : 0;
      const states = q.state ? [q.state] : (Object.keys(STATE_TYPES) as JobState[]);
      const batches = await Promise.all(
        (await knownQueues(q.queue)).flatMap((bq) =>
          states.map(async (state) => (await bq.getJobs(STATE_TYPES[state], 0, offset + q.limit)).filter(Boolean).map((job) => ({ job, state }))),
        ),
      );
      // Newest first across queues and states; the cursor is how many were already shown.
      const all = batches.flat().sort((a, b) => b.job.timestamp - a.job.timestamp || (b.job.id! < a.job.id! ? -1 : 1));
      const slice = all.slice(offset, offset + q.limit + 1);
      const jobs = (await Promise.all(slice.slice(0, q.limit).map(({ job, state }) => toJob(job, state)))).filter((j): j is Job => Boolean(j));
      return { jobs, nextCursor: slice.length > q.limit ? Buffer.from(`o:${offset + q.limit}`).toString('base64url') : null };
    },

    async retry(id) {
      const job = await find(id);
      if (!job) throw NotFound('Job', 'job_not_found');
      if ((await job.getState()) !== 'failed') throw Conflict('Only a dead job can be retried', 'job_not_dead');
      await job.retry('failed', { resetAttemptsMade: true, resetAttemptsStarted: true });
      return (await queue.get(id))!;
    },

    async discard(id) {
      const job = await find(id);
      if (!job) {
        const gone = await db.delete(jobOutbox).where(eq(jobOutbox.id, id)).returning({ id: jobOutbox.id });
        if (gone.length) return;
        throw NotFound('Job', 'job_not_found');
      }
      if ((await job.getState()) === 'active') throw Conflict('A running job cannot be discarded', 'job_active');
      try {
        await job.remove();
      } catch (err) {
        // BullMQ refuses to remove a job that is locked by a worker: it started meanwhile.
        throw Conflict(`The job could not be discarded: ${(err as Error).message}`, 'job_active');
      }
    },

    async close() {
      if (closing) return;
      closing = true;
      await relay.close();
      const all = [...workers.values()];
      const late = new Promise<'late'>((r) => setTimeout(() => r('late'), opts.closeTimeoutMs ?? 10_000).unref());
      // Unfinished jobs keep their Redis lock until it lapses; BullMQ's stall check then hands them to another worker.
      if ((await Promise.race([Promise.all(all.map((w) => w.close())), late])) === 'late') await Promise.all(all.map((w) => w.close(true)));
      await Promise.all([...queues.values()].map((e) => e.queue.close()));
      await connection.quit().catch(() => connection.disconnect());
    },
  };
  return queue;
}

export const envelope = (data: unknown, o: OutboxOptions): Envelope => ({ d: data ?? null, u: o.userId ?? null, t: o.timeoutMs ?? null });
