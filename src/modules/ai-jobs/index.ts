import { defineModule } from '../module.ts';
import { aiJobCompletedCategory, aiJobCompletedNotice } from './notice.ts';
import { createAiJobResults } from './repository.ts';
import { aiJobsRoutes } from './routes.ts';
import { aiJobResults } from './schema.ts';
import { AI_JOB_QUEUE, createAiJobs, type AiJobData, type AiJobs } from './service.ts';
import { aiJobSettings, aiJobsEnv, type AiJobSettings } from './settings.ts';

export type { AiJobs } from './service.ts';
export type { AiJobResult } from './contracts.ts';

declare module '../module.ts' {
  interface ServiceMap {
    /** Generations queued as background jobs. */
    aiJobs: AiJobs;
  }
  interface ModuleSettings {
    /** Background generations: worker concurrency and attempt timeout. */
    'ai-jobs': AiJobSettings;
  }
}

const DAY_MS = 24 * 3600 * 1000;

/**
 * AI jobs: `POST /v1/ai/jobs` queues a generation and answers with its job id;
 * the job streams the answer internally, reports tokens so far on its topic,
 * stores the result before it is marked done (so a retry after a crash neither
 * calls nor charges twice) and notifies its owner.
 */
export const aiJobsModule = defineModule({
  name: 'ai-jobs',
  tables: { aiJobResults },
  config: { env: aiJobsEnv, read: aiJobSettings },
  needs: ['ai', 'projects', 'limits', 'users', 'jobs', 'safety'],
  // The completion notice (both build later: used once everything is built).
  uses: ['notifications', 'realtime'],
  provides: ['aiJobs'],
  services: ({ deps, services }) => ({
    aiJobs: createAiJobs({ ...services, results: createAiJobResults(deps.db), logger: deps.logger }),
  }),
  routes: aiJobsRoutes,
  jobs: ({ config, deps, services }) => {
    const notice = aiJobCompletedNotice({ notifications: services.notifications, realtime: services.realtime, logger: deps.logger });
    return [
      {
        queue: AI_JOB_QUEUE,
        handler: async (data: AiJobData, ctx) => {
          const result = await services.aiJobs.run(data, ctx);
          await notice({ userId: ctx.userId!, jobId: ctx.id, notify: data.notify, result });
          return result;
        },
        options: { concurrency: config['ai-jobs'].concurrency, timeoutMs: config['ai-jobs'].timeoutMs },
      },
    ];
  },
  schedules: ({ services }) => [
    // As long as the database queue keeps finished jobs: a result outlives the job it belongs to.
    { name: 'ai-jobs.purge-results', cron: '47 3 * * *', handler: async () => ({ purged: await services.aiJobs.purge(new Date(Date.now() - 7 * DAY_MS)) }) },
  ],
  notifications: [aiJobCompletedCategory],
});
