import type { Deps } from '../../deps.ts';
import { tidy } from '../../platform/db/maintenance.ts';
import { defineModule } from '../module.ts';
import { healthRoutes } from './routes.ts';

declare module '../module.ts' {
  interface ServiceMap {
    health: ReturnType<typeof createHealth>;
  }
}

function createHealth(deps: Deps) {
  return {
    /** Whether each dependency answers: the database and the blob storage always, Redis when configured. */
    async checks(): Promise<Record<string, 'ok' | 'down'>> {
      const checks: Record<string, 'ok' | 'down'> = {};
      checks.database = await deps.database.ping().then(() => 'ok' as const, () => 'down' as const);
      if (deps.redis) checks.redis = await deps.redis.ping().then(() => 'ok' as const, () => 'down' as const);
      checks.storage = await deps.storage.ping().then(() => 'ok' as const, () => 'down' as const);
      return checks;
    },
    /** The Prometheus registry every module's metrics are in. */
    metrics: deps.metrics.registry,
  };
}

/** Health: liveness, readiness of each dependency, Prometheus metrics; at the root, outside /v1. The embedded database's upkeep. */
export const healthModule = defineModule({
  name: 'health',
  provides: ['health'],
  services: ({ deps }) => ({ health: createHealth(deps) }),
  rootRoutes: healthRoutes,
  // The embedded database has no autovacuum: without this, tables that churn grow for ever and the planner never learns their sizes.
  schedules: ({ config, deps }) => (config.databaseUrl ? [] : [{ name: 'database.tidy', cron: '*/5 * * * *', handler: async () => tidy(deps.db) }]),
});
