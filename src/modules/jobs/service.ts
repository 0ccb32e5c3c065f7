import { Conflict, NotFound } from '../../errors.ts';
import type { Announce, EventBus } from '../../platform/bus/bus.ts';
import { FinalJobError, JobTimeoutError, publicJobError, type EnqueueOptions, type Job, type JobContext, type JobHandler, type JobProgress, type JobQueue, type JobState, type ProcessOptions, type PublicJobError } from '../../platform/queue/queue.ts';
import type { ScheduleDefinition, Scheduler } from '../../platform/scheduler/scheduler.ts';
import { clip } from '../../platform/text.ts';

export interface JobsDeps {
  queue: JobQueue;
  scheduler: Scheduler;
  bus: Pick<EventBus, 'deadLetters'>;
  announce: Announce;
}

/** How much of a dead job's error its owner is told (the job itself keeps the whole of it). */
const ERROR_EXCERPT_CHARS = 500;

/**
 * What a job's owner is told of an error not written for users (a driver's or a library's words, which can name
 * internal hosts and queries): that it failed, not why. Admins (`/v1/admin/jobs`) and the logs have the whole of it.
 */
export const INTERNAL_JOB_ERROR: PublicJobError = {
  message: 'The job failed because of an internal error. Quote the job id when reporting it.',
  code: 'internal_error',
};

/** A job's last error as its owner sees it: its own words when they were written for users (publicJobError), INTERNAL_JOB_ERROR otherwise. */
export const ownersError = (job: Pick<Job, 'error' | 'publicError'>): PublicJobError | null => (job.error === null ? null : (job.publicError ?? INTERNAL_JOB_ERROR));

/**
 * Rejects when the attempt times out, so a handler that ignores its signal
 * still ends (for its announcements) with the attempt; a shutdown is not a
 * failure (the job is given back), so only the timeout counts.
 */
function timedOut(signal: AbortSignal): { promise: Promise<never>; done(): void } {
  let onAbort = () => {};
  const promise = new Promise<never>((_, reject) => {
    onAbort = () => {
      if (signal.reason instanceof JobTimeoutError) reject(signal.reason);
    };
    if (signal.aborted) onAbort();
    else signal.addEventListener('abort', onAbort, { once: true });
  });
  promise.catch(() => {});
  return { promise, done: () => signal.removeEventListener('abort', onAbort) };
}

/**
 * Background work as the rest of Parley sees it: modules define their job
 * handlers and cron tasks here; a user's job tells its owner how it moves
 * (`job.progress` events, which reach their sockets, and `job.failed` once
 * its last attempt failed); owners read their own jobs and admins manage the
 * dead ones.
 */
export function createJobs(d: JobsDeps) {
  /** Queues whose jobs an admin cannot discard before they completed (ProcessOptions `mustRun`). */
  const mustRun = new Set<string>();

  /** Wraps a handler so that every step of a user's job is announced to its owner. */
  function announced<T, R>(handler: JobHandler<T, R>): JobHandler<T, R> {
    return async (data, ctx) => {
      const say = (state: JobState, progress: JobProgress | null) => {
        if (ctx.userId) d.announce('job.progress', { userId: ctx.userId, jobId: ctx.id, queue: ctx.queue, state, progress });
      };
      let last: JobProgress | null = null;
      say('active', last);
      const progress = async (value: JobProgress) => {
        await ctx.progress(value);
        last = value;
        say('active', value);
      };
      const timeout = timedOut(ctx.signal);
      try {
        const result = await Promise.race([handler(data, { ...ctx, progress } satisfies JobContext), timeout.promise]);
        say('completed', last);
        return result;
      } catch (err) {
        const dead = ctx.attempt >= ctx.maxAttempts || err instanceof FinalJobError;
        say(dead ? 'dead' : 'waiting', last);
        if (dead && ctx.userId) {
          const shown = publicJobError(err) ?? INTERNAL_JOB_ERROR;
          d.announce('job.failed', { userId: ctx.userId, jobId: ctx.id, queue: ctx.queue, attempts: ctx.attempt, error: clip(shown.message, ERROR_EXCERPT_CHARS), errorCode: shown.code });
        }
        throw err;
      } finally {
        timeout.done();
      }
    };
  }

  return {
    /** Registers the handler of a queue (it runs on workers only). */
    define<T, R = unknown>(queue: string, handler: JobHandler<T, R>, opts?: ProcessOptions) {
      d.queue.process(queue, announced(handler), opts);
      if (opts?.mustRun) mustRun.add(queue);
    },

    /** A cron task defined in code, fired once per firing across the cluster. */
    schedule<T>(def: ScheduleDefinition<T>) {
      d.scheduler.define({ ...def, handler: def.handler && announced(def.handler) });
    },

    enqueue<T>(queue: string, data: T, opts?: EnqueueOptions): Promise<Job<T>> {
      return d.queue.enqueue(queue, data, opts);
    },

    /** Several new jobs of one queue with the same options, in one write; their ids in order. */
    enqueueMany<T>(queue: string, data: T[], opts?: Omit<EnqueueOptions, 'idempotencyKey'>): Promise<string[]> {
      return d.queue.enqueueMany(queue, data, opts);
    },

    get: (id: string) => d.queue.get(id),

    /** The caller's own job; another user's is as missing as one that does not exist. */
    async getOwn(userId: string, id: string): Promise<Job> {
      const job = await d.queue.get(id);
      if (!job || job.userId !== userId) throw NotFound('Job', 'job_not_found');
      return job;
    },

    list: d.queue.list.bind(d.queue),
    retry: (id: string) => d.queue.retry(id),
    /**
     * A job that must run is kept until it completed: discarded, its work would simply never happen (a deleted
     * account's data never erased), and nothing else queues it again. A completed one cannot go back, so the
     * check holds for the discard after it.
     */
    async discard(id: string): Promise<void> {
      const job = await d.queue.get(id);
      if (job && mustRun.has(job.queue) && job.state !== 'completed') {
        throw Conflict(`A job of "${job.queue}" must run: it cannot be discarded before it completed${job.state === 'dead' ? '; retry it once what made it fail is fixed' : ''}`, 'job_must_run');
      }
      await d.queue.discard(id);
    },
    schedules: () => d.scheduler.list(),
    deadLetters: (limit: number) => d.bus.deadLetters(limit),
  };
}

export type Jobs = ReturnType<typeof createJobs>;
