import { z } from 'zod';
import { ValidationError } from '../../errors.ts';
import { calendarDay } from '../../http/dates.ts';
import { opaqueCursor, pageQuery } from '../../http/pagination.ts';
import { usdToMicros } from '../ai/index.ts';
import { BUDGET_PERIODS } from './schema.ts';
import { GROUPS } from './reports.ts';
import { REQUEST_GROUPS } from './requests.ts';

const day = calendarDay;
const usd = z.union([z.string().max(32), z.number().nonnegative()]).describe('USD, at most 6 decimals: "25" or "0.50"');

/** `?groupBy=a,b`: a list of known groups, deduplicated, in the caller's order; 400 on an unknown one. */
const groupList = <G extends string>(allowed: readonly G[]) =>
  z
    .string()
    .max(100)
    .default('day')
    .transform((v, ctx) => {
      const groups = v.split(',').map((g) => g.trim()).filter(Boolean);
      const bad = groups.find((g) => !allowed.includes(g as G));
      if (bad) {
        ctx.addIssue({ code: 'custom', message: `unknown group "${bad}"; use ${allowed.join(', ')}` });
        return z.NEVER;
      }
      return [...new Set(groups)] as G[];
    })
    .describe(`Comma-separated: ${allowed.join(', ')}`);

const rangeFields = {
  from: day.optional().describe('First UTC day, inclusive (default: the first of this month)'),
  to: day.optional().describe('Last UTC day, inclusive (default: today)'),
};

const reportQueryFields = {
  ...rangeFields,
  projectId: z.uuid().optional(),
  apiKeyId: z.uuid().optional(),
  model: z.string().max(200).optional().describe('`provider:model`'),
};

export const usageQuery = z.object({ ...reportQueryFields, groupBy: groupList(GROUPS.filter((g) => g !== 'user')) });
export const adminUsageQuery = z.object({ ...reportQueryFields, userId: z.uuid().optional(), groupBy: groupList(GROUPS) });
export const exportQuery = z.object({ ...rangeFields, userId: z.uuid().optional() });

const totalsFields = {
  requests: z.number().int(),
  failed: z.number().int(),
  inputTokens: z.number().int(),
  outputTokens: z.number().int(),
  cachedTokens: z.number().int(),
  costMicros: z.number().int().describe('Millionths of a USD, for calls with a known price'),
  cost: z.string().describe('The same as a decimal USD string'),
  unpricedRequests: z.number().int().describe('Calls whose model price is unknown: their cost is not included'),
};

export const usageRowSchema = z.object({
  day: z.string().optional(),
  provider: z.string().optional(),
  model: z.string().optional(),
  projectId: z.string().nullable().optional(),
  apiKeyId: z.string().nullable().optional(),
  userId: z.string().optional(),
  ...totalsFields,
});

export const usageReportSchema = z.object({
  from: z.string(),
  to: z.string(),
  groupBy: z.array(z.enum(GROUPS)),
  totals: z.object(totalsFields),
  data: z.array(usageRowSchema),
});

export const budgetSchema = z.object({
  id: z.uuid(),
  scope: z.enum(['default', 'user', 'api_key', 'project']),
  userId: z.string().nullable(),
  subjectId: z.string().nullable(),
  period: z.enum(BUDGET_PERIODS),
  limitMicros: z.number().int().nullable(),
  limit: z.string().nullable().describe('USD'),
  limitTokens: z.number().int().nullable(),
  createdAt: z.string(),
  updatedAt: z.string(),
});

export const limitSchema = budgetSchema.extend({
  usedMicros: z.number().int(),
  used: z.string(),
  usedTokens: z.number().int(),
  reservedMicros: z.number().int().describe('Estimates of calls in flight'),
  reservedTokens: z.number().int(),
  periodStart: z.string().nullable(),
  resetsAt: z.string().nullable().describe('null for a total budget, which never resets'),
});

const limitFields = {
  period: z.enum(BUDGET_PERIODS),
  limitUsd: usd.nullable().optional(),
  limitTokens: z.number().int().positive().max(Number.MAX_SAFE_INTEGER).nullable().optional(),
};

export const ownBudgetBody = z.object({ scope: z.enum(['api_key', 'project']), subjectId: z.uuid(), ...limitFields }).strict();
export const adminBudgetBody = z.object({ userId: z.uuid().nullable().describe('null sets the default for users without a budget of this period'), ...limitFields }).strict();
export const budgetParams = z.object({ id: z.uuid() });
export const adminBudgetsQuery = z.object({ userId: z.uuid().optional().describe('Omit for the defaults') });

/** The body's limits in the service's units; 400 on an amount that is not USD with at most 6 decimals, or is 0. */
export function limitsOf(body: { period: (typeof BUDGET_PERIODS)[number]; limitUsd?: string | number | null; limitTokens?: number | null }) {
  let limitMicros: number | null = null;
  if (body.limitUsd !== undefined && body.limitUsd !== null) {
    try {
      limitMicros = usdToMicros(body.limitUsd);
    } catch (err) {
      throw ValidationError(`limitUsd: ${(err as Error).message}`, 'invalid_amount');
    }
    // As limitTokens: a cap of nothing is not a budget. It would refuse every call, and the 80 % and 100 %
    // alerts (shares of the limit) could never fire. To stop spending, delete the key or project, or ban.
    if (limitMicros === 0) throw ValidationError('limitUsd: must be more than 0', 'invalid_amount');
  }
  return { period: body.period, limitMicros, limitTokens: body.limitTokens ?? null };
}

export const abuseFlagsQuery = pageQuery.extend({
  userId: z.uuid().optional(),
  active: z.enum(['true', 'false']).optional().transform((v) => v === 'true').describe('Only flags not yet cleared'),
});

export const abuseFlagSchema = z.object({
  id: z.uuid(),
  userId: z.string(),
  kind: z.string(),
  evidence: z.string(),
  createdAt: z.string(),
  clearedAt: z.string().nullable(),
  clearedBy: z.string().nullable(),
});

export const requestsQuery = z.object({ ...rangeFields, groupBy: groupList(REQUEST_GROUPS.filter((g) => g !== 'user')) });
export const adminRequestsQuery = z.object({ ...rangeFields, userId: z.uuid().optional(), groupBy: groupList(REQUEST_GROUPS) });

const requestTotals = {
  requests: z.number().int(),
  bytesIn: z.number().int().describe('Request bodies received (uploads)'),
  bytesOut: z.number().int().describe('Responses sent'),
};

export const requestsReportSchema = z.object({
  from: z.string(),
  to: z.string(),
  groupBy: z.array(z.enum(REQUEST_GROUPS)),
  totals: z.object(requestTotals),
  data: z.array(
    z.object({
      day: z.string().optional(),
      method: z.string().optional(),
      route: z.string().optional().describe('The route pattern, e.g. `/v1/conversations/:id`; `unmatched` for unknown paths'),
      userId: z.string().nullable().optional().describe('null for requests without a signed-in caller'),
      ...requestTotals,
    }),
  ),
});

export const storageSchema = z.object({
  userId: z.string(),
  bytes: z.number().int().describe('Every source\'s bytes together'),
  sources: z.array(
    z.object({
      source: z.string().describe('`conversations`, `messages`, `projects`, `prompts`'),
      items: z.number().int(),
      bytes: z.number().int().describe('UTF-8 bytes of the text stored (titles, message text, names, prompts)'),
    }),
  ),
});

/** `<bytes> <userId>` of the last user on the page before. */
function readStorageCursor(text: string) {
  const [bytes, userId] = text.split(' ');
  return /^\d{1,16}$/.test(bytes ?? '') && z.uuid().safeParse(userId).success ? { bytes: Number(bytes), userId: userId! } : undefined;
}

export const adminStorageQuery = pageQuery.extend({
  userId: z.uuid().optional().describe('Just this user (zeros when they store nothing)'),
  cursor: opaqueCursor(readStorageCursor),
});

/** The opaque cursor of the storage listing: where the last page ended. */
export const storageCursor = (last: { bytes: number; userId: string }) => Buffer.from(`${last.bytes} ${last.userId}`).toString('base64url');
