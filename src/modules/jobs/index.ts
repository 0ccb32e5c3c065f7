import { NotFound } from '../../errors.ts';
import { defineModule } from '../module.ts';
import { jobsRoutes } from './routes.ts';
import { createJobs, type Jobs } from './service.ts';
import { jobSettings, jobsEnv, type JobSettings } from './settings.ts';

export type { Jobs } from './service.ts';

declare module '../../platform/bus/events.ts' {
  interface DomainEvents {
    /** A background job moved: its state and progress (0–100 or a job-defined object). */
    'job.progress': { userId: string; jobId: string; queue: string; state: string; progress: unknown };
    /**
     * A user's job failed its last attempt and is dead: `error` is the start of its last error as its owner may read
     * it (ownersError: an internal error's words are not told), `errorCode` its code (absent on events of older releases).
     * System jobs (no user) announce nothing.
     */
    'job.failed': { userId: string; jobId: string; queue: string; attempts: number; error: string; errorCode?: string };
  }
}

declare module '../module.ts' {
  interface ServiceMap {
    jobs: Jobs;
  }
  interface ModuleSettings {
    /** Background jobs: schedule overrides, the BullMQ lock time. */
    jobs: JobSettings;
  }
}

const DAY_MS = 24 * 3600 * 1000;

/**
 * Jobs: what modules queue and schedule, a user's view of their own jobs, and the admin's of the dead ones.
 * A user's job that dies notifies its owner (`job.failed`).
 */
export const jobsModule = defineModule({
  name: 'jobs',
  config: { env: jobsEnv, read: jobSettings },
  provides: ['jobs'],
  // Its owner is told of a dead job (notifications build later: used once everything is built).
  uses: ['notifications'],
  services: ({ deps }) => ({ jobs: createJobs({ queue: deps.queue, scheduler: deps.scheduler, bus: deps.bus, announce: deps.announce }) }),
  routes: jobsRoutes,
  schedules: ({ deps }) => [
    // The database queue keeps rows until purged (BullMQ trims its own).
    { name: 'jobs.purge-finished', cron: '41 3 * * *', handler: async () => ({ purged: await deps.queue.purgeFinished(new Date(Date.now() - 7 * DAY_MS)) }) },
  ],
  notifications: [{ name: 'job.failed', description: 'A background job of yours failed every attempt and stopped.', channels: { inApp: true, email: true } }],
  subscriptions: ({ services }) => [
    {
      group: 'jobs.notify',
      types: ['job.failed'],
      async handler(event) {
        if (event.type !== 'job.failed') return;
        const { userId, jobId, queue, attempts, error, errorCode } = event.payload;
        await services.notifications.notify({
          userId,
          category: 'job.failed',
          title: `Job "${queue}" failed`,
          body: `It failed ${attempts === 1 ? 'its only attempt' : `all ${attempts} attempts`} and was stopped. The last error: ${error}`,
          link: `/jobs/${jobId}`,
          data: { jobId, queue, attempts, error, errorCode: errorCode ?? null },
          sourceKey: event.id,
        });
      },
    },
  ],
  topics: ({ jobs }) => ({
    topics: [
      {
        name: 'job',
        withId: true,
        scope: 'jobs:read',
        authorize: async (p, id) => {
          const job = await jobs.get(id);
          if (!job || job.userId !== p.userId) throw NotFound('Job');
        },
      },
      { name: 'jobs', scope: 'jobs:read' },
    ],
    events: ['job.progress'],
    route: (type, payload) => (type === 'job.progress' ? [`job:${String(payload.jobId)}`, 'jobs'] : []),
  }),
});
