import { defineModule } from '../module.ts';
import { createFootprintReport, type FootprintReport } from './footprint.ts';
import { footprintRoutes } from './footprint-routes.ts';
import { createRequestReports, type RequestReports } from './requests.ts';
import { requestsRoutes } from './requests-routes.ts';
import { usageRoutes } from './routes.ts';
import { formatMicros } from '../ai/index.ts';
import {
  abuseFlags,
  apiRequestsDaily,
  apiRequestsDailyRoutes,
  budgetAlerts,
  budgets,
  storageByUser,
  usageDaily,
  usageDailyModels,
  usageRecentModels,
  usageEvents,
  usageRefreshes,
  type BudgetPeriod,
  type BudgetScope,
} from './schema.ts';
import { createUsage, type Usage } from './service.ts';
import { usageEnv, usageSettings, type UsageSettings } from './settings.ts';
import { usageErasure } from './erasure.ts';

export type { FootprintSource } from './footprint.ts';
export type { Usage } from './service.ts';

declare module '../../platform/bus/events.ts' {
  interface DomainEvents {
    /**
     * `userId`'s spend reached `percent` (80 or 100) of a budget in its period: once per threshold and period,
     * cluster-wide. `spent` and `limit` in micro-dollars and tokens (a null limit: that dimension is not capped).
     */
    'budget.threshold': {
      userId: string;
      budgetId: string;
      scope: BudgetScope;
      /** The API key or project a key or project budget caps; null for a user's (or the default) budget. */
      subjectId: string | null;
      percent: 80 | 100;
      period: BudgetPeriod;
      /** `2026-11-22`, `2026-11` or `total`. */
      periodKey: string;
      resetsAt: string | null;
      spent: { micros: number; tokens: number };
      limit: { micros: number | null; tokens: number | null };
    };
  }
}

const SCOPE_NAMES: Record<BudgetScope, string> = { default: 'account', user: 'account', api_key: 'API key', project: 'project' };
const PERIOD_NAMES: Record<BudgetPeriod, string> = { day: 'daily', month: 'monthly', total: 'total' };

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
  erasure: ({ deps }) => usageErasure(deps.db),
  tables: { usageEvents, usageDaily, usageDailyModels, usageRecentModels, apiRequestsDaily, apiRequestsDailyRoutes, budgets, budgetAlerts, abuseFlags, storageByUser, usageRefreshes },
  config: { env: usageEnv, read: usageSettings },
  needs: ['limits', 'users', 'apiKeys', 'projects'],
  // A budget's owner is told of the thresholds it reaches.
  uses: ['notifications'],
  provides: ['usage', 'footprint', 'requestReports'],
  services: ({ deps, services, footprints }) => {
    const { limits, users, apiKeys, projects } = services;
    const usage = createUsage(deps, {
      subjects: { userExists: users.exists, timezone: users.timezone, ownsApiKey: apiKeys.owns, ownsProject: projects.exists },
      apiKeys,
      // Tokens-per-minute limits count what every metered call used.
      onTokens: (meter, tokens) =>
        limits.addTokens({ userId: meter.userId, role: meter.role ?? 'user', via: meter.apiKeyId ? 'api_key' : 'session', apiKeyId: meter.apiKeyId ?? undefined, scopes: [] }, tokens),
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
    // The per-user storage rollup the admin listing reads (one user's row is also refreshed whenever that user's figures are asked for).
    { name: 'usage.storage', cron: '*/10 * * * *', handler: async () => services.footprint.refresh() },
    {
      name: 'usage.abuse-check',
      cron: '35 * * * *',
      handler: async () => {
        const flags = await services.usage.abuse.run(new Date());
        if (flags.length) deps.logger.warn({ flags: flags.map((f) => ({ userId: f.userId, kind: f.kind })) }, 'abuse check flagged accounts');
        return { flagged: flags.length };
      },
    },
    { name: 'usage.purge-budget-alerts', cron: '17 4 * * *', handler: async () => ({ purged: await services.usage.alerts.purge() }) },
  ],
  notifications: [
    {
      name: 'budget.threshold',
      description: 'Your spend reached 80 % or 100 % of one of your budgets (yours, an API key\'s or a project\'s) in its period.',
      channels: { inApp: true, email: true },
    },
  ],
  subscriptions: ({ services }) => [
    // A key's or a project's budgets go with it (the owners announce their deletions; no foreign key crosses modules).
    {
      group: 'usage.budget-subjects',
      types: ['api_key.deleted', 'project.deleted'],
      async handler(event) {
        if (event.type === 'api_key.deleted') await services.usage.budgets.forgetSubject(event.payload.userId, 'api_key', event.payload.apiKeyId);
        else if (event.type === 'project.deleted') await services.usage.budgets.forgetSubject(event.payload.userId, 'project', event.payload.projectId);
      },
    },
    {
      group: 'usage.notify',
      types: ['budget.threshold'],
      async handler(event) {
        if (event.type !== 'budget.threshold') return;
        const p = event.payload;
        const what = `${PERIOD_NAMES[p.period]} ${SCOPE_NAMES[p.scope]} budget`;
        const amounts = [
          p.limit.micros !== null ? `$${formatMicros(p.spent.micros)} of $${formatMicros(p.limit.micros)}` : null,
          p.limit.tokens !== null ? `${p.spent.tokens} of ${p.limit.tokens} tokens` : null,
        ].filter(Boolean);
        const reset = p.resetsAt ? ` It resets at ${p.resetsAt}.` : '';
        await services.notifications.notify({
          userId: p.userId,
          category: 'budget.threshold',
          title: p.percent >= 100 ? `Your ${what} is used up` : `You have used ${p.percent} % of your ${what}`,
          body: `Spent so far: ${amounts.join(', ')}.${p.percent >= 100 ? ' Calls it covers are refused until it resets or is raised.' : ''}${reset}`,
          link: '/usage/limits',
          data: { budgetId: p.budgetId, scope: p.scope, subjectId: p.subjectId, percent: p.percent, period: p.period, periodKey: p.periodKey, resetsAt: p.resetsAt, spent: p.spent, limit: p.limit },
          priority: p.percent >= 100 ? 'high' : 'normal',
          sourceKey: event.id,
        });
      },
    },
  ],
});
