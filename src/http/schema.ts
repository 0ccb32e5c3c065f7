import { index, integer, jsonb, pgTable, text, uniqueIndex, uuid } from 'drizzle-orm/pg-core';
import { createdAt, id } from '../platform/db/columns.ts';
import { users } from '../modules/users/index.ts';

/**
 * Idempotency-Key records: a retried POST finds the first one's result here
 * instead of doing the work (and the spending) again.
 */
export const idempotencyKeys = pgTable(
  'idempotency_keys',
  {
    id: id(),
    userId: uuid('user_id').notNull().references(() => users.id, { onDelete: 'cascade' }),
    key: text('key').notNull(),
    /** `METHOD path` the key was used on; the same key on another endpoint is a conflict. */
    scope: text('scope').notNull(),
    requestHash: text('request_hash').notNull(),
    /** The resource the first request created (e.g. the assistant message). */
    resourceId: uuid('resource_id'),
    responseStatus: integer('response_status'),
    responseBody: jsonb('response_body'),
    createdAt: createdAt(),
  },
  (t) => [uniqueIndex('idempotency_keys_user_key').on(t.userId, t.key), index('idempotency_keys_created_idx').on(t.createdAt)],
);
