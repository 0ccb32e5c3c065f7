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

/** Jobs: what modules queue and schedule, a user's view of their own jobs, and the admin's of the dead ones. */
export const jobsModule = defineModule({
  name: 'jobs',
  config: { env: jobsEnv, read: jobSettings },
  provides: ['jobs'],
  services: ({ deps }) => ({ jobs: createJobs({ queue: deps.queue, scheduler: deps.scheduler, bus: deps.bus, announce: deps.announce }) }),
  routes: jobsRoutes,
  schedules: ({ deps }) => [
    // The database queue keeps rows until purged (BullMQ trims its own).
    { name: 'jobs.purge-finished', cron: '41 3 * * *', handler: async () => ({ purged: await deps.queue.purgeFinished(new Date(Date.now() - 7 * DAY_MS)) }) },
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
