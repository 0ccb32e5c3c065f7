import type { Config } from './config.ts';
import { ConfigError } from './errors.ts';
import type { Deps } from './deps.ts';
import { createIdempotency } from './http/idempotency.ts';
import { MODULES } from './modules/index.ts';
import type { Schedule, ServiceContext } from './modules/module.ts';
import { moduleContext, type Services } from './services.ts';

const DAY_MS = 24 * 3600 * 1000;

/** The HTTP layer's own cron tasks, beside the modules'. */
const httpTasks = (deps: Deps): Schedule[] => [
  {
    name: 'http.purge-idempotency-keys',
    cron: '23 * * * *',
    handler: async () => void (await createIdempotency(deps.db).purge(new Date(Date.now() - DAY_MS))),
  },
];

/**
 * Every module's queue handlers and cron tasks (and the HTTP layer's),
 * defined in every process (so admins can list the schedules from any
 * instance) and run only where the worker runs: a schedule once per firing
 * across the cluster. `SCHEDULES` can move a task or turn it off.
 */
export function defineWork(deps: Deps, services: Services): void {
  const tasks = httpTasks(deps);
  for (const m of MODULES) {
    const ctx = moduleContext(deps, services, m);
    for (const job of m.jobs?.(ctx) ?? []) services.jobs.define(job.queue, job.handler, job.options);
    tasks.push(...(m.schedules?.(ctx) ?? []));
  }
  const overrides = deps.config.jobs.scheduleOverrides;
  for (const task of tasks) {
    const cron = overrides[task.name] ?? task.cron;
    if (cron === 'off') continue;
    services.jobs.schedule({ ...task, cron, jobOptions: { attempts: 2, timeoutMs: 10 * 60_000 }, processOptions: { timeoutMs: 10 * 60_000 } });
  }
}

/**
 * Throws a ConfigError when SCHEDULES names a task that does not exist (a typo would otherwise leave the
 * task it meant on its default). Called by loadConfig, before anything is opened: a module's `schedules`
 * only describes its tasks, whose handlers use the deps and services when they run, so the names can be
 * read over the config alone; a module that touched a service while describing would fail here, in
 * every test that loads a config.
 */
export function checkScheduleOverrides(config: Config): void {
  const described = { config } as ServiceContext<never>;
  const names = [...httpTasks({ config } as Deps), ...MODULES.flatMap((m) => m.schedules?.(described) ?? [])].map((t) => t.name);
  const unknown = Object.keys(config.jobs.scheduleOverrides).filter((name) => !names.includes(name));
  if (unknown.length) {
    throw new ConfigError(`Invalid configuration:\n  SCHEDULES: no task ${unknown.map((n) => `"${n}"`).join(', ')}; the tasks are ${names.sort().join(', ')}`);
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
