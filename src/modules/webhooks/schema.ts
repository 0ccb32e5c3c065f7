import { index, integer, jsonb, pgTable, text, uniqueIndex, uuid } from 'drizzle-orm/pg-core';
import { createdAt, id, time } from '../../platform/db/columns.ts';
import { users } from '../users/index.ts';

/** A secret replaced by a rotation: encrypted like the current one, it signs too until `until` (an ISO 8601 time). */
export interface PreviousSecret {
  secretEnc: string;
  until: string;
}

/**
 * Where a user's (or one of their projects') events are posted. The secret is encrypted; each secret replaced by a
 * rotation signs too until its own `until`, newest first, a few at most (read with the endpoint: one query an attempt).
 */
export const webhookEndpoints = pgTable(
  'webhook_endpoints',
  {
    id: id(),
    userId: uuid('user_id').notNull().references(() => users.id, { onDelete: 'cascade' }),
    projectId: uuid('project_id'),
    url: text('url').notNull(),
    description: text('description'),
    events: text('events').array().notNull(),
    secretEnc: text('secret_enc').notNull(),
    previousSecrets: jsonb('previous_secrets').$type<PreviousSecret[]>().notNull().default([]),
    disabledAt: time('disabled_at'),
    disabledReason: text('disabled_reason'),
    /** The first failure since the last success; null while healthy. */
    failingSince: time('failing_since'),
    /** Messages a second at most (null: no limit); beyond it, deliveries wait. */
    rateLimit: integer('rate_limit'),
    createdAt: createdAt(),
    updatedAt: time('updated_at').notNull().defaultNow(),
  },
  (t) => [index('webhook_endpoints_user_idx').on(t.userId, t.id)],
);

/** One event for one endpoint: its id (`msg_…`) is the `webhook-id` every attempt and replay carries. */
export const webhookMessages = pgTable(
  'webhook_messages',
  {
    id: text('id').primaryKey(),
    endpointId: uuid('endpoint_id').notNull().references(() => webhookEndpoints.id, { onDelete: 'cascade' }),
    userId: uuid('user_id').notNull(),
    eventType: text('event_type').notNull(),
    /** The bus event it came from: a redelivered event makes no second message. */
    sourceEventId: text('source_event_id'),
    payload: jsonb('payload').$type<Record<string, unknown>>().notNull(),
    status: text('status', { enum: ['pending', 'delivered', 'failed'] }).notNull().default('pending'),
    createdAt: createdAt(),
  },
  (t) => [index('webhook_messages_endpoint_idx').on(t.endpointId, t.id), uniqueIndex('webhook_messages_source_key').on(t.endpointId, t.sourceEventId)],
);

/** Every try of a message: what came back, how long it took, or why it failed. */
export const webhookAttempts = pgTable(
  'webhook_attempts',
  {
    id: id(),
    messageId: text('message_id').notNull().references(() => webhookMessages.id, { onDelete: 'cascade' }),
    /** Step of the retry schedule (1 = immediate). */
    attempt: integer('attempt').notNull(),
    statusCode: integer('status_code'),
    latencyMs: integer('latency_ms').notNull(),
    /** At most 1 KB of the response body. */
    responseExcerpt: text('response_excerpt'),
    error: text('error'),
    createdAt: createdAt(),
  },
  (t) => [index('webhook_attempts_message_idx').on(t.messageId, t.id)],
);

export type EndpointRow = typeof webhookEndpoints.$inferSelect;
export type MessageRow = typeof webhookMessages.$inferSelect;
export type AttemptRow = typeof webhookAttempts.$inferSelect;
