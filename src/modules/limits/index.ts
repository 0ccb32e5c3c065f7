import { defineModule } from '../module.ts';
import { limitsRoutes } from './routes.ts';
import { bans } from './schema.ts';
import { createRequestLimits, type RequestLimits } from './service.ts';
import { limitSettings, limitsEnv, type LimitSettings } from './settings.ts';

export { limitRequests } from './routes.ts';
export { rateLimitHeaders, type RequestLimits } from './service.ts';

declare module '../module.ts' {
  interface ServiceMap {
    limits: RequestLimits;
  }
  interface ModuleSettings {
    /** Request and token rate limits per role, and when violations become a ban. */
    limits: LimitSettings;
  }
}

/** Limits: requests and tokens per minute by user, key and IP; bans after repeated violations or by an admin. */
export const limitsModule = defineModule({
  name: 'limits',
  tables: { bans },
  config: { env: limitsEnv, read: limitSettings },
  needs: ['audit', 'users', 'apiKeys'],
  provides: ['limits'],
  services: ({ deps, config, services }) => ({
    limits: createRequestLimits({
      db: deps.db,
      audit: services.audit,
      broadcast: deps.broadcast,
      exists: { user: services.users.exists, apiKey: services.apiKeys.ownerOf },
      queue: deps.queue,
      limiters: deps.limiters,
      settings: config.limits,
      logger: deps.logger,
    }),
  }),
  routes: limitsRoutes,
  schedules: ({ services }) => [{ name: 'limits.purge-bans', cron: '29 4 * * *', handler: async () => ({ purged: await services.limits.purgeEndedBans() }) }],
  // After the HTTP server has drained: the tokens of the last calls reach the shared counters.
  stop: ({ limits }) => limits.close(),
});
