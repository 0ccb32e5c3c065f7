import { NotFound } from '../../errors.ts';
import type { Announce, EventBus } from '../../platform/bus/bus.ts';
import type { EnqueueOptions, Job, JobContext, JobHandler, JobProgress, JobQueue, JobState, ProcessOptions } from '../../platform/queue/queue.ts';
import type { ScheduleDefinition, Scheduler } from '../../platform/scheduler/scheduler.ts';

export interface JobsDeps {
  queue: JobQueue;
  scheduler: Scheduler;
  bus: Pick<EventBus, 'deadLetters'>;
  announce: Announce;
}

/**
 * Background work as the rest of Parley sees it: modules define their job
 * handlers and cron tasks here; a user's job tells its owner how it moves
 * (`job.progress` events, which reach their sockets); owners read their own
 * jobs and admins manage the dead ones.
 */
export function createJobs(d: JobsDeps) {
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
      try {
        const result = await handler(data, { ...ctx, progress } satisfies JobContext);
        say('completed', last);
        return result;
      } catch (err) {
        say(ctx.attempt >= ctx.maxAttempts ? 'dead' : 'waiting', last);
        throw err;
      }
    };
  }

  return {
    /** Registers the handler of a queue (it runs on workers only). */
    define<T, R = unknown>(queue: string, handler: JobHandler<T, R>, opts?: ProcessOptions) {
      d.queue.process(queue, announced(handler), opts);
    },

    /** A cron task defined in code, fired once per firing across the cluster. */
    schedule<T>(def: ScheduleDefinition<T>) {
      d.scheduler.define({ ...def, handler: def.handler && announced(def.handler) });
    },

    enqueue<T>(queue: string, data: T, opts?: EnqueueOptions): Promise<Job<T>> {
      return d.queue.enqueue(queue, data, opts);
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
    discard: (id: string) => d.queue.discard(id),
    schedules: () => d.scheduler.list(),
    deadLetters: (limit: number) => d.bus.deadLetters(limit),
  };
}

export type Jobs = ReturnType<typeof createJobs>;
