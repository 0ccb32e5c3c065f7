import { Readable } from 'node:stream';
import { stringify } from 'csv-stringify';
import { z } from 'zod';
import { principal } from '../../http/guards.ts';
import { page, toPage } from '../../http/pagination.ts';
import { problemSchema } from '../../http/problem.ts';
import type { App } from '../../http/types.ts';
import type { RouteContext } from '../module.ts';
import { formatMicros } from '../ai/index.ts';
import {
  abuseFlagSchema,
  abuseFlagsQuery,
  adminBudgetBody,
  adminBudgetsQuery,
  adminUsageQuery,
  budgetParams,
  budgetSchema,
  exportQuery,
  limitSchema,
  limitsOf,
  ownBudgetBody,
  usageQuery,
  usageReportSchema,
} from './contracts.ts';
import { reportRange } from './report-range.ts';
import type { Group, ReportRow } from './reports.ts';
import type { AbuseFlagRow } from './schema.ts';
import type { BudgetRow } from './schema.ts';

const problems = { 400: problemSchema, 401: problemSchema, 403: problemSchema };
const tags = ['usage'];

export const toPublicBudget = (b: BudgetRow) => ({
  id: b.id,
  scope: b.scope,
  userId: b.userId,
  subjectId: b.subjectId,
  period: b.period,
  limitMicros: b.limitMicros,
  limit: formatMicros(b.limitMicros),
  limitTokens: b.limitTokens,
  createdAt: b.createdAt.toISOString(),
  updatedAt: b.updatedAt.toISOString(),
});

const withCost = (r: ReportRow) => ({ ...r, cost: formatMicros(r.costMicros)! });

function totalsOf(rows: ReportRow[]) {
  const t = { requests: 0, failed: 0, inputTokens: 0, outputTokens: 0, cachedTokens: 0, costMicros: 0, unpricedRequests: 0 };
  for (const r of rows) for (const k of Object.keys(t) as (keyof typeof t)[]) t[k] += r[k];
  return withCost(t);
}

/** Usage reports, limits and budgets: the caller's own under /usage and /budgets, everyone's under /admin. */
export function usageRoutes(app: App, { services, guards }: RouteContext<'usage'>) {
  const { usage } = services;
  const user = guards.user({ scope: 'usage:read' });
  const admin = guards.admin();

  async function report(q: { from?: string; to?: string; groupBy: Group[]; userId?: string; projectId?: string; apiKeyId?: string; model?: string }) {
    const { from, to } = reportRange(q);
    const rows = await usage.reports.report({ ...q, from, to });
    return { from, to, groupBy: q.groupBy, totals: totalsOf(rows), data: rows.map(withCost) };
  }

  app.get('/usage', {
    schema: {
      tags,
      summary: 'Your usage',
      description: 'Model calls, tokens and cost over UTC days, grouped by day, model, project and/or API key. Current to the last metering flush (about a second).',
      querystring: usageQuery,
      response: { 200: usageReportSchema, ...problems },
    },
    onRequest: user,
    handler: async (request) => report({ ...request.query, userId: principal(request).userId }),
  });

  app.get('/usage/limits', {
    schema: {
      tags,
      summary: 'Your budgets: limit, used, reset',
      description: 'Every budget that applies to you: your own (or the default), your API keys\' and your projects\'. Day and month periods follow the timezone in your preferences.',
      response: { 200: z.object({ timezone: z.string(), data: z.array(limitSchema) }), ...problems },
    },
    onRequest: user,
    handler: async (request) => {
      const { timezone, limits } = await usage.budgets.limitsOf(principal(request).userId);
      return {
        timezone,
        data: limits.map((l) => ({
          ...toPublicBudget(l.budget),
          usedMicros: l.counter.used.micros,
          used: formatMicros(l.counter.used.micros)!,
          usedTokens: l.counter.used.tokens,
          reservedMicros: l.counter.reserved.micros,
          reservedTokens: l.counter.reserved.tokens,
          periodStart: l.period.startsAt?.toISOString() ?? null,
          resetsAt: l.period.resetsAt?.toISOString() ?? null,
        })),
      };
    },
  });

  app.put('/budgets', {
    schema: {
      tags,
      summary: 'Cap one of your API keys or projects',
      description: 'Creates or replaces the budget of that key or project for the period. A call over it gets 402 `budget_exceeded` and is never sent to the provider.',
      body: ownBudgetBody,
      response: { 200: budgetSchema, 404: problemSchema, ...problems },
    },
    onRequest: guards.user(),
    handler: async (request) => {
      const { scope, subjectId, ...rest } = request.body;
      return toPublicBudget(await usage.budgets.setOwn(principal(request).userId, scope, subjectId, limitsOf(rest)));
    },
  });

  app.delete('/budgets/:id', {
    schema: { tags, summary: 'Remove a budget from one of your keys or projects', params: budgetParams, response: { 204: z.null(), 404: problemSchema, ...problems } },
    onRequest: guards.user(),
    handler: async (request, reply) => {
      await usage.budgets.deleteOwn(principal(request).userId, request.params.id);
      return reply.status(204).send(null);
    },
  });

  app.get('/admin/usage', {
    schema: { tags: ['admin'], summary: 'Usage across users', querystring: adminUsageQuery, response: { 200: usageReportSchema, ...problems } },
    onRequest: admin,
    handler: async (request) => report(request.query),
  });

  app.get('/admin/usage/export', {
    schema: {
      tags: ['admin'],
      summary: 'Usage as CSV, for billing',
      description: 'One row per UTC day, user, API key, project and model; streamed.',
      querystring: exportQuery,
      produces: ['text/csv'],
    },
    onRequest: admin,
    handler: async (request, reply) => {
      const { from, to } = reportRange(request.query);
      const columns = ['day', 'userId', 'apiKeyId', 'projectId', 'provider', 'model', 'requests', 'failed', 'inputTokens', 'outputTokens', 'cachedTokens', 'costMicros', 'cost', 'unpricedRequests'];
      const csv = stringify({ header: true, columns });
      Readable.from(usage.reports.exportRows({ from, to, userId: request.query.userId }))
        .map((r: ReportRow) => withCost(r))
        .on('error', (err) => csv.destroy(err))
        .pipe(csv);
      return reply
        .header('content-type', 'text/csv; charset=utf-8')
        .header('content-disposition', `attachment; filename="parley-usage-${from}-to-${to}.csv"`)
        .send(csv);
    },
  });

  app.get('/admin/budgets', {
    schema: { tags: ['admin'], summary: 'A user\'s budgets, or the defaults', querystring: adminBudgetsQuery, response: { 200: z.object({ data: z.array(budgetSchema) }), ...problems } },
    onRequest: admin,
    handler: async (request) => ({ data: (await usage.budgets.listAll(request.query.userId)).map(toPublicBudget) }),
  });

  app.put('/admin/budgets', {
    schema: {
      tags: ['admin'],
      summary: 'Set a user\'s budget, or the default for users without one',
      body: adminBudgetBody,
      response: { 200: budgetSchema, 404: problemSchema, ...problems },
    },
    onRequest: admin,
    handler: async (request) => {
      const { userId, ...rest } = request.body;
      return toPublicBudget(await usage.budgets.setForUser(userId, limitsOf(rest)));
    },
  });

  const toFlag = (f: AbuseFlagRow) => ({ ...f, createdAt: f.createdAt.toISOString(), clearedAt: f.clearedAt?.toISOString() ?? null });

  app.get('/admin/abuse-flags', {
    schema: {
      tags: ['admin'],
      summary: 'Accounts the abuse check flagged, newest first',
      description: 'Kinds: `usage_spike` (the last hour far above the account\'s own weekly baseline), `repeated_prompts`, `key_burst` (many API keys created at once), `content_flagged` (a message or answer the safety checks stopped; see docs/safety.md).',
      querystring: abuseFlagsQuery,
      response: { 200: page(abuseFlagSchema), ...problems },
    },
    onRequest: admin,
    handler: async (request) => {
      const { limit, ...filters } = request.query;
      return toPage(await usage.abuse.list({ ...filters, limit: limit + 1 }), limit, toFlag);
    },
  });

  app.post('/admin/abuse-flags/:id/clear', {
    schema: { tags: ['admin'], summary: 'Clear a flag (idempotent)', params: budgetParams, response: { 200: abuseFlagSchema, 404: problemSchema, ...problems } },
    onRequest: admin,
    handler: async (request) => toFlag(await usage.abuse.clear(request.params.id, principal(request).userId)),
  });

  app.post('/admin/abuse-flags/check', {
    schema: {
      tags: ['admin'],
      summary: 'Run the abuse check now',
      description: 'The worker runs it every hour; this runs it at once and returns the flags it raised.',
      response: { 200: z.object({ raised: z.array(abuseFlagSchema) }), ...problems },
    },
    onRequest: admin,
    handler: async () => ({ raised: (await usage.abuse.run()).map(toFlag) }),
  });

  app.delete('/admin/budgets/:id', {
    schema: { tags: ['admin'], summary: 'Remove any budget', params: budgetParams, response: { 204: z.null(), 404: problemSchema, ...problems } },
    onRequest: admin,
    handler: async (request, reply) => {
      await usage.budgets.deleteAny(request.params.id);
      return reply.status(204).send(null);
    },
  });
}
