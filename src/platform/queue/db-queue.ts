import { and, eq, lt, ne, sql } from 'drizzle-orm';
import { Conflict, NotFound } from '../../errors.ts';
import { isDatabaseUnreachable, type Db } from '../db/database.ts';
import type { Logger } from '../observability/logger.ts';
import { byId, claim, dueQueues, insertJob, insertJobs, listJobs, reclaim, renew, setProgress, settle, toJob, type JobRow, type Outcome } from './db-jobs.ts';
import { listenPostgres } from './pg-listen.ts';
import { assertEnqueueOptions, assertQueueName, DEFAULTS, runAttempt, scheduledRunKept, scheduleOfFiring, type EnqueueOptions, type Job, type JobHandler, type JobQueue, type ProcessOptions } from './queue.ts';
import { jobs } from './schema.ts';

const CHANNEL = 'parley_jobs';
const SHUTDOWN = 'The worker shut down during this attempt';

export interface DbQueueOptions {
  db: Db;
  logger: Logger;
  /** When set (PostgreSQL), enqueues NOTIFY and workers LISTEN, so other processes pick jobs up at once. */
  listenUrl?: string;
  pollMs?: number;
  /** How long close() waits for running jobs before it gives them back to the queue. */
  closeTimeoutMs?: number;
  /**
   * A running job's lease, renewed by its worker every third of it; a worker
   * that dies loses its jobs to the others this long after its last renewal.
   */
  lockMs?: number;
}

/** The schedule whose firing this is, when it waits for its first attempt (see scheduledRunKept). */
function unstartedScheduleRun(row: JobRow): string | undefined {
  if (row.state !== 'waiting' || row.startedAt) return undefined;
  return scheduleOfFiring(row.idempotencyKey);
}

/** The durable queue in the database: rows claimed with FOR UPDATE SKIP LOCKED, on PGlite and PostgreSQL alike. */
export function dbQueue(opts: DbQueueOptions): JobQueue {
  const { db, logger } = opts;
  const pollMs = opts.pollMs ?? 250;
  const lockMs = opts.lockMs ?? DEFAULTS.lockMs;
  const runners = new Map<string, Runner>();
  const timers: NodeJS.Timeout[] = [];
  let started = false;
  let closing = false;
  let heartbeat: NodeJS.Timeout | undefined;
  let listener: ReturnType<typeof listenPostgres> | undefined;
  // While PostgreSQL is away the poll, the lease renewals and every claim fail, four times a second: said once, until
  // a poll gets through again. Other errors are logged as they come.
  let away = false;
  const report = (err: unknown, fields: Record<string, unknown>, message: string) => {
    if (!isDatabaseUnreachable(err)) return logger.error({ err, ...fields }, message);
    if (away) return;
    away = true;
    logger.warn({ cause: (err as Error).message }, 'the job queue cannot reach PostgreSQL: jobs wait until it is back');
  };
  const reached = () => {
    if (away) logger.info('the job queue reaches PostgreSQL again');
    away = false;
  };

  class Runner {
    readonly queue: string;
    readonly handler: JobHandler;
    readonly concurrency: number;
    readonly timeoutMs: number;
    readonly running = new Map<string, { row: JobRow; done: Promise<void>; abort: AbortController }>();
    pumping: Promise<void> | undefined;
    again = false;
    /** The last look found more due than there were free slots: a slot that frees looks again. */
    backlog = false;

    constructor(queue: string, handler: JobHandler, o: ProcessOptions) {
      this.queue = queue;
      this.handler = handler;
      this.concurrency = o.concurrency ?? DEFAULTS.concurrency;
      this.timeoutMs = o.timeoutMs ?? DEFAULTS.timeoutMs;
    }

    /**
     * Claims jobs until the queue is empty or every slot is busy; calls made meanwhile run it again. A claim
     * that brings fewer jobs than it asked for found the queue empty: no second one to learn it again (new
     * jobs wake the runner: an enqueue here, a NOTIFY from elsewhere, the poll for delayed ones).
     */
    pump(): Promise<void> {
      if (this.pumping) {
        this.again = true;
        return this.pumping;
      }
      const p = this.fill().finally(() => {
        if (this.pumping === p) this.pumping = undefined;
      });
      this.pumping = p;
      return p;
    }

    private async fill() {
      try {
        do {
          this.again = false;
          while (started && !closing) {
            const free = this.concurrency - this.running.size;
            if (free <= 0) {
              this.backlog = true;
              break;
            }
            const rows = await claim(db, this.queue, lockMs, free);
            // Claimed while close() began: given back rather than started with nobody to wait for them.
            for (const row of rows) {
              if (closing) await settle(db, row, { released: SHUTDOWN });
              else this.run(row);
            }
            this.backlog = rows.length === free;
            if (!this.backlog) break;
          }
        } while (this.again && !closing);
      } catch (err) {
        if (!closing) report(err, { queue: this.queue }, 'claiming a job failed');
      }
    }

    run(row: JobRow) {
      const abort = new AbortController();
      const ctx = {
        id: row.id,
        queue: row.queue,
        userId: row.userId,
        attempt: row.attempts,
        maxAttempts: row.maxAttempts,
        progress: (value: Job['progress']) => setProgress(db, row, value),
      };
      const done = runAttempt((signal) => this.handler(row.data, { ...ctx, signal }), row.timeoutMs ?? this.timeoutMs, abort.signal)
        .then(
          (result): Outcome => ({ result }),
          (error): Outcome => (abort.signal.aborted && closing ? { released: SHUTDOWN } : { error }),
        )
        .then(async (outcome) => {
          const settled = await settle(db, row, outcome);
          if (settled === 'dead') logger.warn({ jobId: row.id, queue: row.queue, error: 'error' in outcome ? String(outcome.error) : null }, 'job failed its last attempt');
          return settled;
        })
        .catch((err) => report(err, { jobId: row.id }, 'recording a job outcome failed'))
        .then((settled) => {
          this.running.delete(row.id);
          // A free slot looks for more when some were left waiting, or when this job is due again at once.
          if (this.backlog || settled === 'retry') void this.pump();
        });
      this.running.set(row.id, { row, done, abort });
    }
  }

  const nudge = (queue?: string) => {
    if (!started || closing) return;
    if (queue) void runners.get(queue)?.pump();
    else for (const r of runners.values()) void r.pump();
  };
  const allRunning = () => [...runners.values()].flatMap((r) => [...r.running.values()]);
  const every = (ms: number, fn: () => Promise<unknown>, what: string) => {
    const t = setInterval(() => void fn().catch((err) => report(err, {}, `${what} failed`)), ms);
    t.unref();
    timers.push(t);
    return t;
  };

  /** Tells the workers of every instance that `queue` has new jobs. */
  async function wake(tx: Db, queue: string, o: EnqueueOptions) {
    // Inside a transaction the NOTIFY goes out at commit. PGlite runs one transaction at a
    // time, so a claim queued now runs after it ends; elsewhere the poll is the fallback.
    if (opts.listenUrl) await tx.execute(sql`select pg_notify(${CHANNEL}, ${queue})`);
    if (!o.delayMs) o.tx ? setImmediate(() => nudge(queue)) : nudge(queue);
  }

  return {
    kind: 'database',

    async enqueue<T>(queue: string, data: T, o: EnqueueOptions = {}): Promise<Job<T>> {
      assertEnqueueOptions(queue, o);
      const tx = o.tx ?? db;
      const { row, created } = await insertJob(tx, queue, data, o);
      if (created) await wake(tx, queue, o);
      return toJob(row) as Job<T>;
    },

    async enqueueMany<T>(queue: string, data: T[], o: Omit<EnqueueOptions, 'idempotencyKey'> = {}): Promise<string[]> {
      assertEnqueueOptions(queue, o);
      if (!data.length) return [];
      const tx = o.tx ?? db;
      const ids = await insertJobs(tx, queue, data, o);
      await wake(tx, queue, o);
      return ids;
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
      // The poll finds delayed and retried jobs come due, and what another process enqueued without a NOTIFY reaching
      // this one; a queue is only claimed from when it has something due.
      every(pollMs, async () => {
        const due = await dueQueues(db, [...runners.keys()]);
        reached();
        for (const queue of due) nudge(queue);
      }, 'polling');
      const takeBack = async () => {
        const lost = await reclaim(db);
        if (lost.length) {
          logger.warn({ jobs: lost }, 'reclaimed jobs of a lost worker');
          nudge();
        }
      };
      every(Math.max(pollMs, Math.floor(lockMs / 2)), takeBack, 'reclaiming jobs');
      heartbeat = every(Math.max(50, Math.floor(lockMs / 3)), () => renew(db, allRunning().map((r) => r.row), lockMs), 'renewing job leases');
      await takeBack();
      nudge();
    },

    async get(id) {
      const row = await byId(db, id);
      return row && toJob(row);
    },

    list: (q) => listJobs(db, q),

    async retry(id) {
      if (!(await byId(db, id))) throw NotFound('Job', 'job_not_found');
      const [row] = await db
        .update(jobs)
        .set({ state: 'waiting', attempts: 0, runAt: sql`now()`, finishedAt: null })
        .where(and(eq(jobs.id, id), eq(jobs.state, 'dead')))
        .returning();
      if (!row) throw Conflict('Only a dead job can be retried', 'job_not_dead');
      if (opts.listenUrl) await db.execute(sql`select pg_notify(${CHANNEL}, ${row.queue})`);
      nudge(row.queue);
      return toJob(row);
    },

    async discard(id) {
      const row = await byId(db, id);
      if (!row) throw NotFound('Job', 'job_not_found');
      // Never started stays never started until claimed (which makes it active): the check holds for the delete.
      const schedule = unstartedScheduleRun(row);
      if (schedule) throw scheduledRunKept(schedule);
      const gone = await db.delete(jobs).where(and(eq(jobs.id, id), ne(jobs.state, 'active'))).returning({ id: jobs.id });
      if (!gone.length) throw Conflict('A running job cannot be discarded', 'job_active');
    },

    async purgeFinished(before) {
      const gone = await db.delete(jobs).where(and(eq(jobs.state, 'completed'), lt(jobs.finishedAt, before))).returning({ id: jobs.id });
      return gone.length;
    },

    async close() {
      if (closing) return;
      closing = true;
      // Leases keep being renewed until the running jobs are settled; polling and reclaiming stop now.
      for (const t of timers) if (t !== heartbeat) clearInterval(t);
      await listener?.close();
      await Promise.all([...runners.values()].map((r) => r.pumping));
      const running = allRunning();
      const late = new Promise<'late'>((resolve) => setTimeout(() => resolve('late'), opts.closeTimeoutMs ?? 10_000).unref());
      if ((await Promise.race([Promise.all(running.map((r) => r.done)), late])) === 'late') {
        // The stragglers are told to stop and their jobs given back; the queue stops waiting for them.
        for (const r of running) r.abort.abort(new Error(SHUTDOWN));
        await Promise.all(running.map((r) => r.done));
      }
      clearInterval(heartbeat);
    },
  };
}
