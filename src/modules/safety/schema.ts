import { integer, jsonb, pgTable, text, uuid } from 'drizzle-orm/pg-core';
import { time } from '../../platform/db/columns.ts';
import { projects } from '../projects/index.ts';

/** How a project reads the moderation provider's verdict. */
export interface ModerationPolicy {
  /** Only these categories count (null: every category the provider flags). */
  categories: string[] | null;
  /** A category whose score reaches its threshold counts, whatever the provider's own verdict. */
  thresholds: Record<string, number>;
}

/** A project's own safety rules, on top of the deployment's. No row: the deployment's alone. */
export const safetyRules = pgTable('safety_rules', {
  projectId: uuid('project_id')
    .primaryKey()
    .references(() => projects.id, { onDelete: 'cascade' }),
  /** Normalized (NFKC, invisible characters removed, lower case) when saved. */
  blockedTerms: text('blocked_terms').array().notNull().default([]),
  /** Checked when saved: they compile with `iu` and have no catastrophic shape (see rules.ts). */
  patterns: text('patterns').array().notNull().default([]),
  maxInputChars: integer('max_input_chars'),
  moderation: jsonb('moderation').$type<ModerationPolicy>().notNull().default({ categories: null, thresholds: {} }),
  updatedAt: time('updated_at').notNull().defaultNow(),
  updatedBy: uuid('updated_by'),
});

export type SafetyRulesRow = typeof safetyRules.$inferSelect;
