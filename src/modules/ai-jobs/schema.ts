import { index, jsonb, pgTable, uuid } from 'drizzle-orm/pg-core';
import { createdAt } from '../../platform/db/columns.ts';
import type { AiJobResult } from './contracts.ts';

/**
 * A background generation's result, written the moment its model call
 * finished and before the queue marks the job done: a worker that dies in
 * between leaves the job to be retried, and the retry returns this instead of
 * calling (and charging) the model again. Purged a week on, with the jobs.
 */
export const aiJobResults = pgTable(
  'ai_job_results',
  {
    jobId: uuid('job_id').primaryKey(),
    userId: uuid('user_id').notNull(),
    result: jsonb('result').$type<AiJobResult>().notNull(),
    createdAt: createdAt(),
  },
  // The daily purge reads only what is a week old.
  (t) => [index('ai_job_results_created_idx').on(t.createdAt)],
);
