import { sql } from 'drizzle-orm';
import { bigint, date, index, integer, jsonb, pgTable, primaryKey, text, unique, uuid } from 'drizzle-orm/pg-core';
import { createdAt, id, time } from '../../platform/db/columns.ts';
import type { FailedAttempt } from '../ai/index.ts';

export const USAGE_SOURCES = ['chat', 'gateway', 'title', 'embedding', 'document', 'notification', 'sandbox', 'moderation', 'job'] as const;
export type UsageSource = (typeof USAGE_SOURCES)[number];
export const USAGE_STATUSES = ['ok', 'failed', 'cancelled'] as const;
export type UsageStatus = (typeof USAGE_STATUSES)[number];

/**
 * One row per model call, written in batches off the request path. No foreign
 * keys: billing history outlives the user, key, project or conversation it
 * names. Costs are integer micro-dollars; null when the model's price is unknown.
 */
export const usageEvents = pgTable(
  'usage_events',
  {
    id: id(),
    occurredAt: time('occurred_at').notNull(),
    userId: uuid('user_id').notNull(),
    apiKeyId: uuid('api_key_id'),
    projectId: uuid('project_id'),
    conversationId: uuid('conversation_id'),
    messageId: uuid('message_id'),
    source: text('source', { enum: USAGE_SOURCES }).notNull(),
    provider: text('provider').notNull(),
    model: text('model').notNull(),
    inputTokens: integer('input_tokens').notNull().default(0),
    outputTokens: integer('output_tokens').notNull().default(0),
    cachedTokens: integer('cached_tokens').notNull().default(0),
    costMicros: bigint('cost_micros', { mode: 'number' }),
    latencyMs: integer('latency_ms').notNull(),
    ttftMs: integer('ttft_ms'),
    status: text('status', { enum: USAGE_STATUSES }).notNull(),
    /** A short hash of the last user message, so the abuse check can spot many identical prompts without storing them. */
    promptHash: text('prompt_hash'),
    /** Failed attempts before the answer (fallback, retries). */
    attempts: jsonb('attempts').$type<FailedAttempt[]>().notNull().default(sql`'[]'::jsonb`),
  },
  (t) => [index('usage_events_user_time_idx').on(t.userId, t.occurredAt), index('usage_events_time_idx').on(t.occurredAt)],
);

/** Daily totals (UTC days) per user, key, project and model, kept by the rollup task so reports stay fast. */
export const usageDaily = pgTable(
  'usage_daily',
  {
    day: date('day', { mode: 'string' }).notNull(),
    userId: uuid('user_id').notNull(),
    apiKeyId: uuid('api_key_id'),
    projectId: uuid('project_id'),
    provider: text('provider').notNull(),
    model: text('model').notNull(),
    requests: integer('requests').notNull(),
    failed: integer('failed').notNull(),
    inputTokens: bigint('input_tokens', { mode: 'number' }).notNull(),
    outputTokens: bigint('output_tokens', { mode: 'number' }).notNull(),
    cachedTokens: bigint('cached_tokens', { mode: 'number' }).notNull(),
    costMicros: bigint('cost_micros', { mode: 'number' }).notNull(),
    /** Calls whose price was unknown: their cost is not in costMicros. */
    unpricedRequests: integer('unpriced_requests').notNull(),
  },
  (t) => [
    unique('usage_daily_key').on(t.day, t.userId, t.apiKeyId, t.projectId, t.provider, t.model).nullsNotDistinct(),
    index('usage_daily_user_idx').on(t.userId, t.day),
    // Admin reports filtered by one project or key, across users.
    index('usage_daily_project_idx').on(t.projectId, t.day),
    index('usage_daily_api_key_idx').on(t.apiKeyId, t.day),
  ],
);

/** A model's totals over a day, as usage_daily_models and usage_recent_models keep them. */
const modelTotals = () => ({
  provider: text('provider').notNull(),
  model: text('model').notNull(),
  requests: bigint('requests', { mode: 'number' }).notNull(),
  failed: bigint('failed', { mode: 'number' }).notNull(),
  inputTokens: bigint('input_tokens', { mode: 'number' }).notNull(),
  outputTokens: bigint('output_tokens', { mode: 'number' }).notNull(),
  cachedTokens: bigint('cached_tokens', { mode: 'number' }).notNull(),
  costMicros: bigint('cost_micros', { mode: 'number' }).notNull(),
  unpricedRequests: bigint('unpriced_requests', { mode: 'number' }).notNull(),
});

/**
 * The same days summed over every user, key and project: what admin reports across
 * users read (by day and/or model), so they cost the days and models asked for,
 * not the number of users. Written by the rollup beside usage_daily, from it.
 */
export const usageDailyModels = pgTable(
  'usage_daily_models',
  {
    day: date('day', { mode: 'string' }).notNull(),
    ...modelTotals(),
  },
  (t) => [primaryKey({ columns: [t.day, t.provider, t.model] })],
);

/**
 * The same per-model totals for the days after the last rolled-up one (today,
 * usually), from their first event up to `rolled_to`: the hourly rollup
 * recomputes them whole, so a report across users reads these rows and only
 * the events since `rolled_to` (an hour's at most) instead of every event of
 * today. Every row of one run has the same `rolled_to`.
 */
export const usageRecentModels = pgTable(
  'usage_recent_models',
  {
    day: date('day', { mode: 'string' }).notNull(),
    ...modelTotals(),
    rolledTo: time('rolled_to').notNull(),
  },
  (t) => [primaryKey({ columns: [t.day, t.provider, t.model] })],
);

/**
 * What each user stores, by source (see footprint.ts), as of `computedAt`: the
 * admin listing pages through it by bytes instead of summing every stored row
 * per request. Refreshed whole by the `usage.storage` schedule, and one user at
 * a time whenever that user's figures are computed. Users who store nothing
 * have no row.
 */
export const storageByUser = pgTable(
  'storage_by_user',
  {
    userId: uuid('user_id').primaryKey(),
    bytes: bigint('bytes', { mode: 'number' }).notNull(),
    sources: jsonb('sources').$type<Array<{ source: string; items: number; bytes: number }>>().notNull(),
    computedAt: time('computed_at').notNull(),
  },
  (t) => [index('storage_by_user_bytes_idx').on(t.bytes.desc(), t.userId)],
);

/** When each whole-table refresh (`storage`) last completed, so a first listing knows none has. */
export const usageRefreshes = pgTable('usage_refreshes', {
  name: text('name').primaryKey(),
  refreshedAt: time('refreshed_at').notNull(),
});

/** API requests per user, route and UTC day; anonymous requests have no user. */
export const apiRequestsDaily = pgTable(
  'api_requests_daily',
  {
    day: date('day', { mode: 'string' }).notNull(),
    userId: uuid('user_id'),
    method: text('method').notNull(),
    route: text('route').notNull(),
    requests: bigint('requests', { mode: 'number' }).notNull(),
    /** Request body bytes received (uploads included); see src/http/traffic.ts for what is known. */
    bytesIn: bigint('bytes_in', { mode: 'number' }).notNull().default(0),
    /**
     * Response bytes sent. Rows written before migration 0005 split the two hold
     * request plus response bytes here (and 0 in bytesIn), so in + out stays the
     * whole traffic of every row.
     */
    bytesOut: bigint('bytes_out', { mode: 'number' }).notNull().default(0),
  },
  (t) => [unique('api_requests_daily_key').on(t.day, t.userId, t.method, t.route).nullsNotDistinct(), index('api_requests_daily_user_idx').on(t.userId, t.day)],
);

/**
 * The same counts summed over users, per UTC day, method and route, written by the
 * recorder in the same transaction: admin request reports across users read it,
 * so they cost days × routes, not the number of users.
 */
export const apiRequestsDailyRoutes = pgTable(
  'api_requests_daily_routes',
  {
    day: date('day', { mode: 'string' }).notNull(),
    method: text('method').notNull(),
    route: text('route').notNull(),
    requests: bigint('requests', { mode: 'number' }).notNull(),
    bytesIn: bigint('bytes_in', { mode: 'number' }).notNull().default(0),
    bytesOut: bigint('bytes_out', { mode: 'number' }).notNull().default(0),
  },
  (t) => [primaryKey({ columns: [t.day, t.method, t.route] })],
);

export const BUDGET_SCOPES = ['default', 'user', 'api_key', 'project'] as const;
export type BudgetScope = (typeof BUDGET_SCOPES)[number];
export const BUDGET_PERIODS = ['day', 'month', 'total'] as const;
export type BudgetPeriod = (typeof BUDGET_PERIODS)[number];

/**
 * A spending cap. `default` budgets (set by admins) apply to every user who has
 * no `user` budget of the same period. Api-key and project budgets are owned by
 * the user (`userId`) whose key or project `subjectId` names.
 */
export const budgets = pgTable(
  'budgets',
  {
    id: id(),
    scope: text('scope', { enum: BUDGET_SCOPES }).notNull(),
    userId: uuid('user_id'),
    subjectId: uuid('subject_id'),
    period: text('period', { enum: BUDGET_PERIODS }).notNull(),
    limitMicros: bigint('limit_micros', { mode: 'number' }),
    limitTokens: bigint('limit_tokens', { mode: 'number' }),
    createdAt: createdAt(),
    updatedAt: time('updated_at').notNull().defaultNow(),
  },
  (t) => [unique('budgets_key').on(t.scope, t.userId, t.subjectId, t.period).nullsNotDistinct(), index('budgets_user_idx').on(t.userId)],
);

export type BudgetRow = typeof budgets.$inferSelect;

/**
 * A share of a budget (80 or 100 %) one user reached in one period: the row is the claim that makes the
 * `budget.threshold` event once across every instance (whoever inserts it announces it).
 */
export const budgetAlerts = pgTable(
  'budget_alerts',
  {
    budgetId: uuid('budget_id')
      .notNull()
      .references(() => budgets.id, { onDelete: 'cascade' }),
    /** Whose spend reached it (a default budget counts each user apart). */
    userId: uuid('user_id').notNull(),
    /** The period's key: `2026-11-22`, `2026-11` or `total`. */
    periodKey: text('period_key').notNull(),
    threshold: integer('threshold').notNull(),
    createdAt: createdAt(),
  },
  (t) => [primaryKey({ columns: [t.budgetId, t.userId, t.periodKey, t.threshold] })],
);

/** Accounts the abuse check found suspicious, with the evidence, until an admin clears them. */
export const abuseFlags = pgTable(
  'abuse_flags',
  {
    id: id(),
    userId: uuid('user_id').notNull(),
    /** What tripped: `usage_spike`, `repeated_prompts`, `key_burst`, `content_flagged` (the safety checks). */
    kind: text('kind').notNull(),
    evidence: text('evidence').notNull(),
    createdAt: createdAt(),
    clearedAt: time('cleared_at'),
    clearedBy: uuid('cleared_by'),
  },
  (t) => [index('abuse_flags_user_idx').on(t.userId, t.createdAt), index('abuse_flags_active_idx').on(t.createdAt).where(sql`${t.clearedAt} is null`)],
);

export type AbuseFlagRow = typeof abuseFlags.$inferSelect;
