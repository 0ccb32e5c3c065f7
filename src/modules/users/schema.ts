import { sql } from 'drizzle-orm';
import { index, jsonb, pgTable, text, uniqueIndex } from 'drizzle-orm/pg-core';
import { createdAt, id, time } from '../../platform/db/columns.ts';

export const users = pgTable(
  'users',
  {
    id: id(),
    /** Stored lower-cased; unique. */
    email: text('email').notNull(),
    emailVerifiedAt: time('email_verified_at'),
    /** argon2id PHC string; null for accounts that only sign in through OAuth. */
    passwordHash: text('password_hash'),
    name: text('name'),
    role: text('role', { enum: ['user', 'admin'] }).notNull().default('user'),
    disabledAt: time('disabled_at'),
    /**
     * When the account was deleted: from then on it is gone to every reader (signed out, its address free), while
     * a job erases what it holds, a batch at a time, then this row (see erasure.ts).
     */
    deletedAt: time('deleted_at'),
    preferences: jsonb('preferences').notNull().default(sql`'{}'::jsonb`),
    createdAt: createdAt(),
    updatedAt: time('updated_at').notNull().defaultNow(),
  },
  // The admin listing by role (admins are few among many users), newest first.
  (t) => [uniqueIndex('users_email_key').on(t.email), index('users_role_idx').on(t.role, t.id)],
);

export type UserRow = typeof users.$inferSelect;
