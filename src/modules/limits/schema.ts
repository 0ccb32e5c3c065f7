import { sql } from 'drizzle-orm';
import { index, integer, pgTable, text, uuid } from 'drizzle-orm/pg-core';
import { createdAt, id, time } from '../../platform/db/columns.ts';

export const BAN_KINDS = ['user', 'api_key', 'ip'] as const;
export type BanKind = (typeof BAN_KINDS)[number];

/** A temporary ban after repeated rate-limit violations (or set by an admin); lifted early by an admin. */
export const bans = pgTable(
  'bans',
  {
    id: id(),
    kind: text('kind', { enum: BAN_KINDS }).notNull(),
    /** The user id, API key id or IP address banned. */
    subject: text('subject').notNull(),
    reason: text('reason').notNull(),
    /** Violations counted when the ban was set. */
    violations: integer('violations').notNull().default(0),
    createdAt: createdAt(),
    expiresAt: time('expires_at').notNull(),
    liftedAt: time('lifted_at'),
    liftedBy: uuid('lifted_by'),
  },
  (t) => [
    index('bans_subject_idx').on(t.kind, t.subject, t.expiresAt),
    // The bans in force (each process reloads them every 30 s), never every ban there ever was.
    index('bans_active_idx').on(t.expiresAt).where(sql`${t.liftedAt} is null`),
  ],
);

export type BanRow = typeof bans.$inferSelect;
