import { defineModule } from '../module.ts';
import { createFootprintReport, type FootprintReport } from './footprint.ts';
import { footprintRoutes } from './footprint-routes.ts';
import { createRequestReports, type RequestReports } from './requests.ts';
import { requestsRoutes } from './requests-routes.ts';
import { usageRoutes } from './routes.ts';
import { abuseFlags, apiRequestsDaily, budgets, usageDaily, usageEvents } from './schema.ts';
import { createUsage, type Usage } from './service.ts';
import { usageEnv, usageSettings, type UsageSettings } from './settings.ts';

export type { FootprintSource } from './footprint.ts';
export type { Usage } from './service.ts';

declare module '../module.ts' {
  interface ServiceMap {
    /** Metering, budgets, usage reports and the abuse check. */
    usage: Usage;
    /** What each user stores, by source, as every module declares it. */
    footprint: FootprintReport;
    /** API requests with bytes in and out, by day, route or user. */
    requestReports: RequestReports;
  }
  interface ModuleSettings {
    usage: UsageSettings;
  }
}

/** Usage: every model call metered, budgets that refuse before spending, reports, request counts, per-user footprint. */
export const usageModule = defineModule({
  name: 'usage',
  tables: { usageEvents, usageDaily, apiRequestsDaily, budgets, abuseFlags },
  config: { env: usageEnv, read: usageSettings },
  needs: ['limits', 'users', 'apiKeys', 'projects'],
  provides: ['usage', 'footprint', 'requestReports'],
  services: ({ deps, services, footprints }) => {
    const { limits, users, apiKeys, projects } = services;
    const usage = createUsage(deps, {
      subjects: { userExists: users.exists, timezone: users.timezone, ownsApiKey: apiKeys.owns, ownsProject: projects.exists },
      apiKeys,
      // Tokens-per-minute limits count what every metered call used.
      onTokens: (meter, tokens) =>
        void limits.addTokens({ userId: meter.userId, role: meter.role ?? 'user', via: meter.apiKeyId ? 'api_key' : 'session', apiKeyId: meter.apiKeyId ?? undefined, scopes: [] }, tokens),
      ban: (userId, seconds, reason) => limits.ban('user', userId, seconds, reason),
    });
    return { usage, footprint: createFootprintReport(deps.db, footprints), requestReports: createRequestReports(deps.db) };
  },
  // After the HTTP server has drained: every pending event and budget counter is written.
  stop: ({ usage }) => usage.close(),
  routes(app, ctx) {
    usageRoutes(app, ctx);
    requestsRoutes(app, ctx);
    footprintRoutes(app, ctx);
  },
  schedules: ({ services, deps }) => [
    { name: 'usage.rollup', cron: '5 * * * *', handler: async () => ({ days: await services.usage.reports.rollup(new Date()) }) },
    {
      name: 'usage.abuse-check',
      cron: '35 * * * *',
      handler: async () => {
        const flags = await services.usage.abuse.run(new Date());
        if (flags.length) deps.logger.warn({ flags: flags.map((f) => ({ userId: f.userId, kind: f.kind })) }, 'abuse check flagged accounts');
        return { flagged: flags.length };
      },
    },
  ],
});
