import { index, jsonb, pgTable, text, uuid } from 'drizzle-orm/pg-core';
import { createdAt, id } from '../../platform/db/columns.ts';

/** Security-relevant events. No foreign keys: the trail outlives deleted users. */
export const auditLog = pgTable(
  'audit_log',
  {
    id: id(),
    userId: uuid('user_id'),
    actorId: uuid('actor_id'),
    action: text('action').notNull(),
    ip: text('ip'),
    userAgent: text('user_agent'),
    metadata: jsonb('metadata').$type<Record<string, unknown>>().notNull().default({}),
    createdAt: createdAt(),
  },
  (t) => [index('audit_log_user_idx').on(t.userId, t.id), index('audit_log_action_idx').on(t.action, t.id)],
);

export type AuditRow = typeof auditLog.$inferSelect;
