import type { Deps } from './deps.ts';
import { purgeExpiredAuthRows } from './modules/auth/maintenance.ts';
import { createGenerationRepository } from './modules/chat/generation-repository.ts';
import { createIdempotency } from './http/idempotency.ts';
import type { ScheduleDefinition } from './platform/scheduler/scheduler.ts';
import type { Services } from './services.ts';

const DAY_MS = 24 * 3600 * 1000;

/**
 * The cron tasks, defined in every process (so admins can list them from any
 * instance) and fired only where the worker runs: once per firing across
 * the cluster. `SCHEDULES` can move a task or turn it off.
 */
export function defineSchedules(deps: Deps, services: Services): void {
  const tasks: Array<ScheduleDefinition<null>> = [
    {
      name: 'auth.purge-expired',
      cron: '17 * * * *',
      handler: async () => void (await purgeExpiredAuthRows(deps.db, new Date())),
    },
    {
      name: 'http.purge-idempotency-keys',
      cron: '23 * * * *',
      handler: async () => void (await createIdempotency(deps.db).purge(new Date(Date.now() - DAY_MS))),
    },
    {
      name: 'chat.fail-abandoned',
      cron: '*/5 * * * *',
      // Well past the longest an answer may run: whoever was generating it is gone.
      handler: async () => {
        const before = new Date(Date.now() - (deps.config.chat.maxStreamSeconds + 300) * 1000);
        const abandoned = await createGenerationRepository(deps.db).failAbandoned(before);
        if (abandoned) deps.logger.warn({ abandoned }, 'marked abandoned generations failed');
        return { abandoned };
      },
    },
    {
      name: 'jobs.purge-finished',
      cron: '41 3 * * *',
      // The database queue keeps rows until purged (BullMQ trims its own).
      handler: async () => ({ purged: await deps.queue.purgeFinished(new Date(Date.now() - 7 * DAY_MS)) }),
    },
    {
      name: 'usage.rollup',
      cron: '5 * * * *',
      handler: async () => ({ days: await services.usage.reports.rollup(new Date()) }),
    },
    {
      name: 'usage.abuse-check',
      cron: '35 * * * *',
      handler: async () => {
        const flags = await services.usage.abuse.run(new Date());
        if (flags.length) deps.logger.warn({ flags: flags.map((f) => ({ userId: f.userId, kind: f.kind })) }, 'abuse check flagged accounts');
        return { flagged: flags.length };
      },
    },
  ];
  const overrides = deps.config.jobs.scheduleOverrides;
  for (const task of tasks) {
    const cron = overrides[task.name] ?? task.cron;
    if (cron === 'off') continue;
    services.jobs.schedule({ ...task, cron, jobOptions: { attempts: 2, timeoutMs: 10 * 60_000 }, processOptions: { timeoutMs: 10 * 60_000 } });
  }
}

/** The worker role: runs the queued jobs and fires the schedules. */
export async function startWorker(deps: Deps) {
  await deps.queue.start();
  await deps.scheduler.start();
  return {
    async stop() {
      await deps.scheduler.close();
      await deps.queue.close();
    },
  };
}
