import { Job as BullJob, ErrorCode, Queue, UnrecoverableError, WaitingError, Worker } from 'bullmq';
import { Redis } from 'ioredis';
import { eq } from 'drizzle-orm';
import { uuidv7 } from 'uuidv7';
import { Conflict, NotFound } from '../../errors.ts';
import type { Db } from '../db/database.ts';
import { isConnectionError } from '../net/connection-errors.ts';
import type { Logger } from '../observability/logger.ts';
import { redisUnavailable } from '../redis/redis.ts';
import { bullOptions, envelope, listJobs, pending, publicFailure, stateOf, toJob, type Envelope } from './bullmq-jobs.ts';
import { isUuid, jsonb } from './db-jobs.ts';
import { createOutboxRelay, type OutboxOptions } from './outbox-relay.ts';
import { assertEnqueueOptions, assertQueueName, DEFAULTS, FinalJobError, keyedJobId, publicJobError, runAttempt, scheduledRunKept, type EnqueueOptions, type Job, type JobHandler, type JobQueue, type ProcessOptions } from './queue.ts';
import { jobOutbox } from './schema.ts';

const SHUTDOWN = 'The worker shut down during this attempt';

export interface BullmqQueueOptions {
  redisUrl: string;
  redisPrefix: string;
  db: Db;
  logger: Logger;
  /** PostgreSQL URL: the outbox relay LISTENs there to move committed jobs at once. */
  listenUrl?: string;
  /** How long close() waits for running jobs before it puts them back in the queue. */
  closeTimeoutMs?: number;
  /**
   * A running job's lock (BullMQ `lockDuration`, renewed by its worker every
   * half of it) and how often workers look for stalled jobs (`stalledInterval`):
   * a worker that dies loses its jobs to the others within about twice this.
   */
  lockMs?: number;
}

export interface BullmqJobQueue extends JobQueue {
  /** The BullMQ queue behind a name (the scheduler's job schedulers live on it). */
  bull(name: string): Promise<Queue>;
  /** False while a connection to Redis that was up is lost: BullMQ's commands would wait for it rather than fail, which a request must not. */
  reachable(): boolean;
}

/** An error that says the connection to Redis is gone or cannot be made (not a command's or a job's own error). */
function connectionLost(err: unknown): boolean {
  return isConnectionError(err) || /^(Connection is closed|connect E[A-Z]+|read E[A-Z]+|write E[A-Z]+)/.test((err as { message?: string } | undefined)?.message ?? '');
}

/** BullMQ on Redis; jobs enqueued in a transaction go through the `job_outbox` table and a relay. */
export function bullmqQueue(opts: BullmqQueueOptions): BullmqJobQueue {
  const { db, logger } = opts;
  const lockMs = opts.lockMs ?? DEFAULTS.lockMs;
  // Workers block on Redis: BullMQ requires no per-request retry limit on their connections.
  const connection = new Redis(opts.redisUrl, { maxRetriesPerRequest: null });
  // While Redis is away every queue and worker reports each reconnect attempt (hundreds of lines a minute): said
  // once, as openRedis says it, until the connection is ready again. Other errors are logged as they come.
  let away = false;
  const report = (err: unknown, fields: Record<string, unknown>, message: string, level: 'warn' | 'error' = 'warn') => {
    if (!connectionLost(err)) return logger[level]({ err, ...fields }, message);
    if (away) return;
    away = true;
    logger.warn({ err }, 'BullMQ cannot reach Redis: queued jobs wait until it is back');
  };
  connection.on('error', (err) => report(err, {}, 'BullMQ Redis connection error'));
  connection.on('ready', () => {
    if (away) logger.info('BullMQ reaches Redis again');
    away = false;
  });
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
      queue.on('error', (err) => report(err, { queue: name }, 'BullMQ queue error'));
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
  // Before the connection first comes up (start-up), commands wait for it; after, a lost connection is an outage.
  let connected = false;
  connection.once('ready', () => (connected = true));
  const reachable = () => !connected || connection.status === 'ready';
  /** Reading or changing jobs for a request: 503 at once while Redis is unreachable, not a wait for its return. */
  const requireRedis = () => {
    if (!reachable()) throw redisUnavailable();
  };
  async function knownQueues(only?: string): Promise<Queue[]> {
    const names = only ? [only] : (await connection.smembers(registry)).sort();
    return Promise.all(names.map(bull));
  }

  const relay = createOutboxRelay({
    db,
    logger,
    listenUrl: opts.listenUrl,
    add: async (name, jobs) => {
      const q = await bull(name);
      await q.addBulk(jobs.map((j) => ({ name, data: envelope(j.data, j.options), opts: bullOptions(j.id, j.options) })));
    },
  });

  /**
   * Writes the owner's form of a failed attempt's error into its job (or clears an earlier attempt's), before
   * BullMQ records the failure: BullMQ keeps only the error's message, with nothing to tell whether it was meant
   * for users. Not written, the owner is told the job failed, not why.
   */
  async function notePublicError(job: BullJob<Envelope>, err: unknown) {
    const shown = publicJobError(err);
    if (!shown && !job.data.e) return;
    const { e: _earlier, ...data } = job.data;
    // The reason BullMQ records: the thrown error's message (a FinalJobError's is thrown again with the same).
    const reason = (err as { message?: unknown } | null | undefined)?.message;
    try {
      await job.updateData(shown && typeof reason === 'string' ? { ...data, e: publicFailure(shown, reason) } : data);
    } catch (updateErr) {
      report(updateErr, { jobId: job.id, queue: job.queueName }, "could not record the owner's form of a job's error");
    }
  }

  function startWorker(name: string) {
    const { handler, opts: o } = handlers.get(name)!;
    const worker = new Worker<Envelope>(
      name,
      // Three parameters: BullMQ hands a processor its abort signal only when it declares one.
      async (job, token, signal) => {
        const ctx = {
          id: job.id!,
          queue: name,
          userId: job.data.u,
          // Failed attempts + 1: a stalled or shut-down attempt is not counted, as BullMQ does not count it either.
          attempt: job.attemptsMade + 1,
          maxAttempts: job.opts.attempts ?? 1,
          progress: (p: Job['progress']) => job.updateProgress(p),
        };
        try {
          return await runAttempt((s) => handler(job.data.d, { ...ctx, signal: s }), job.data.t ?? o.timeoutMs ?? DEFAULTS.timeoutMs, signal);
        } catch (err) {
          const failed = err instanceof FinalJobError || !(closing && signal?.aborted);
          if (failed) await notePublicError(job, err);
          if (err instanceof FinalJobError) throw new UnrecoverableError(err.message);
          if (failed) throw err;
          // Shut down mid-attempt: the job goes back to the queue untried, for another worker now.
          await job.moveToWait(token);
          throw new WaitingError();
        }
      },
      {
        connection,
        prefix,
        concurrency: o.concurrency ?? DEFAULTS.concurrency,
        autorun: false,
        lockDuration: lockMs,
        stalledInterval: lockMs,
      },
    );
    worker.on('error', (err) => report(err, { queue: name }, 'BullMQ worker error', 'error'));
    worker.on('failed', (job, err) => {
      if (job && (job.attemptsMade >= (job.opts.attempts ?? 1) || err instanceof UnrecoverableError)) logger.warn({ jobId: job.id, queue: name, error: err.message }, 'job failed its last attempt');
    });
    workers.set(name, worker);
    worker.run().catch((err) => logger.error({ err, queue: name }, 'BullMQ worker stopped'));
  }

  async function find(id: string): Promise<BullJob | undefined> {
    const found = await Promise.all((await knownQueues()).map((q) => BullJob.fromId(q, id)));
    return found.find((j): j is BullJob => Boolean(j));
  }

  /** The state is read before the job: a job read mid-move never looks finished without its result. */
  async function read(q: Queue, id: string): Promise<Job | undefined> {
    const state = stateOf(await q.getJobState(id));
    const job = state && (await BullJob.fromId(q, id));
    return job ? toJob(job, state) : undefined;
  }

  const queue: BullmqJobQueue = {
    kind: 'bullmq',
    bull,
    reachable,

    async enqueue<T>(name: string, data: T, o: EnqueueOptions = {}): Promise<Job<T>> {
      assertEnqueueOptions(name, o);
      const id = o.idempotencyKey ? keyedJobId(name, o.idempotencyKey) : uuidv7();
      const { tx, idempotencyKey: _key, ...rest } = o;
      const options: OutboxOptions = { ...rest, userId: o.userId ?? null };
      if (o.idempotencyKey) {
        const existing = await read(await bull(name), id);
        if (existing) return existing as Job<T>;
      }
      if (tx) {
        const [row] = await tx.insert(jobOutbox).values({ id, queue: name, data: jsonb(data), options }).onConflictDoNothing().returning();
        await relay.nudge(tx);
        return pending(row ?? (await tx.select().from(jobOutbox).where(eq(jobOutbox.id, id)))[0]!) as Job<T>;
      }
      const q = await bull(name);
      // A job id already taken (the same idempotency key, concurrently) adds nothing: BullMQ returns the existing job.
      const job = await q.add(name, envelope(data, options), bullOptions(id, options));
      if (o.idempotencyKey) return ((await read(q, id)) ?? pending({ id, queue: name, data: data ?? null, options, createdAt: new Date(job.timestamp) })) as Job<T>;
      return {
        ...pending({ id: job.id!, queue: name, data: data ?? null, options, createdAt: new Date(job.timestamp) }),
        state: o.delayMs ? 'delayed' : 'waiting',
      } as Job<T>;
    },

    async enqueueMany<T>(name: string, data: T[], o: Omit<EnqueueOptions, 'idempotencyKey'> = {}): Promise<string[]> {
      assertEnqueueOptions(name, o);
      if (!data.length) return [];
      const { tx, ...rest } = o;
      const options: OutboxOptions = { ...rest, userId: o.userId ?? null };
      const rows = data.map((d) => ({ id: uuidv7(), queue: name, data: jsonb(d), options }));
      if (tx) {
        await relay.insert(tx, tx.insert(jobOutbox).values(rows));
      } else {
        const q = await bull(name);
        await q.addBulk(rows.map((r, i) => ({ name, data: envelope(data[i], options), opts: bullOptions(r.id, options) })));
      }
      return rows.map((r) => r.id);
    },

    process(name, handler, o = {}) {
      assertQueueName(name);
      if (handlers.has(name)) throw new Error(`Queue "${name}" already has a handler`);
      handlers.set(name, { handler: handler as JobHandler, opts: o });
      entry(name).registered.catch((err) => logger.warn({ err, queue: name }, 'registering a queue failed'));
      if (started && !closing) startWorker(name);
    },

    async start() {
      if (started) return;
      started = true;
      for (const name of handlers.keys()) startWorker(name);
      await Promise.all([...workers.values()].map((w) => w.waitUntilReady()));
    },

    async get(id) {
      requireRedis();
      const found = (await Promise.all((await knownQueues()).map((q) => read(q, id)))).find(Boolean);
      if (found) return found;
      // Not in Redis: perhaps still in the outbox, whose ids are UUIDs (a scheduler's job ids are not).
      if (!isUuid(id)) return undefined;
      const [row] = await db.select().from(jobOutbox).where(eq(jobOutbox.id, id));
      return row && pending(row);
    },

    async list(q) {
      requireRedis();
      return listJobs(await knownQueues(q.queue), q);
    },

    async retry(id) {
      requireRedis();
      const job = await find(id);
      if (!job) throw NotFound('Job', 'job_not_found');
      const notDead = () => Conflict('Only a dead job can be retried', 'job_not_dead');
      if ((await job.getState()) !== 'failed') throw notDead();
      try {
        await job.retry('failed', { resetAttemptsMade: true, resetAttemptsStarted: true });
      } catch (err) {
        // Another request retried or discarded it since the check: BullMQ's script finds it no longer failed, or gone.
        if (!(await find(id))) throw NotFound('Job', 'job_not_found');
        if ((await job.getState()) !== 'failed') throw notDead();
        throw err;
      }
      const retried = await queue.get(id);
      if (!retried) throw NotFound('Job', 'job_not_found'); // discarded straight after
      return retried;
    },

    async purgeFinished() {
      return 0; // removeOnComplete keeps BullMQ's own completed jobs bounded
    },

    async discard(id) {
      requireRedis();
      const job = await find(id);
      if (!job) {
        if (!isUuid(id)) throw NotFound('Job', 'job_not_found');
        const gone = await db.delete(jobOutbox).where(eq(jobOutbox.id, id)).returning({ id: jobOutbox.id });
        if (gone.length) return;
        throw NotFound('Job', 'job_not_found');
      }
      if ((await job.getState()) === 'active') throw Conflict('A running job cannot be discarded', 'job_active');
      try {
        await job.remove();
      } catch (err) {
        // Its job scheduler's next run (delayed, or waiting for a worker): BullMQ keeps it, and so does the database queue.
        if ((err as { code?: unknown }).code === ErrorCode.JobBelongsToJobScheduler) throw scheduledRunKept(job.repeatJobKey ?? job.name);
        // BullMQ refuses to remove a job that is locked by a worker: it started meanwhile.
        throw Conflict(`The job could not be discarded: ${(err as Error).message}`, 'job_active');
      }
    },

    async close() {
      if (closing) return;
      closing = true;
      await relay.close();
      const all = [...workers.values()];
      // Redis unreachable (or never reached): a graceful close would wait for it forever (BullMQ), and there is nothing to hand back.
      const force = connection.status !== 'ready';
      const closed = Promise.all(all.map((w) => w.close(force)));
      const late = new Promise<'late'>((r) => setTimeout(() => r('late'), opts.closeTimeoutMs ?? 10_000).unref());
      if ((await Promise.race([closed, late])) === 'late') {
        // The attempts still running are aborted and their jobs put back in the queue (see the processor).
        for (const w of all) w.cancelAllJobs(SHUTDOWN);
        // A worker whose blocking connection is stuck (seen after Redis restarted under it) never finishes a
        // graceful close: force it, and stop waiting after a few seconds more; its jobs' locks lapse, so
        // another worker takes them.
        const forced = Promise.all(all.map((w) => w.close(true).catch(() => {})));
        const given = new Promise<'late'>((r) => setTimeout(() => r('late'), 5_000).unref());
        if ((await Promise.race([Promise.all([closed, forced]), given])) === 'late') {
          logger.warn('a job worker did not close in time: dropping its Redis connection');
          await Promise.all(all.map((w) => w.disconnect().catch(() => {})));
        }
      }
      await Promise.all([...queues.values()].map((e) => e.queue.close()));
      await connection.quit().catch(() => connection.disconnect());
    },
  };
  return queue;
}
