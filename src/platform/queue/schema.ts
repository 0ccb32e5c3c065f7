import { sql } from 'drizzle-orm';
import { index, integer, jsonb, pgTable, text, uniqueIndex, uuid } from 'drizzle-orm/pg-core';
import { createdAt, id, time } from '../db/columns.ts';

export const JOB_ROW_STATES = ['waiting', 'active', 'completed', 'dead'] as const;

/**
 * The database queue (embedded, and PostgreSQL without Redis). A delayed job
 * is a waiting one whose `run_at` is ahead; an active one is leased until
 * `locked_until`, after which another worker may take it (its worker died).
 */
export const jobs = pgTable(
  'jobs',
  {
    id: id(),
    queue: text('queue').notNull(),
    data: jsonb('data').$type<unknown>().notNull(),
    state: text('state', { enum: JOB_ROW_STATES }).notNull().default('waiting'),
    priority: integer('priority').notNull().default(0),
    runAt: time('run_at').notNull().defaultNow(),
    attempts: integer('attempts').notNull().default(0),
    maxAttempts: integer('max_attempts').notNull(),
    backoffMs: integer('backoff_ms').notNull(),
    timeoutMs: integer('timeout_ms'),
    progress: jsonb('progress').$type<number | Record<string, unknown>>().notNull().default(sql`'0'::jsonb`),
    result: jsonb('result').$type<unknown>(),
    lastError: text('last_error'),
    /**
     * The last error as its owner may read it (publicJobError), with its code; both null when it was not written for
     * users, and on the rows failed before these columns: the owner is then told it failed, not why.
     */
    publicError: text('public_error'),
    errorCode: text('error_code'),
    userId: uuid('user_id'),
    idempotencyKey: text('idempotency_key'),
    lockedUntil: time('locked_until'),
    createdAt: createdAt(),
    startedAt: time('started_at'),
    finishedAt: time('finished_at'),
  },
  (t) => [
    index('jobs_claim_idx').on(t.queue, t.priority, t.runAt).where(sql`state = 'waiting'`),
    index('jobs_lease_idx').on(t.lockedUntil).where(sql`state = 'active'`),
    index('jobs_state_idx').on(t.state, t.id),
    uniqueIndex('jobs_idempotency_idx').on(t.queue, t.idempotencyKey),
    // The daily purge of completed jobs reads only the old ones.
    index('jobs_completed_idx').on(t.finishedAt).where(sql`state = 'completed'`),
  ],
);

/**
 * Jobs enqueued inside a transaction when the queue is BullMQ: written with the
 * business rows, moved to Redis by the relay once committed. The row id is the
 * BullMQ job id, so a relay that adds a row twice still queues it once.
 */
export const jobOutbox = pgTable('job_outbox', {
  id: uuid('id').primaryKey(),
  queue: text('queue').notNull(),
  data: jsonb('data').$type<unknown>().notNull(),
  options: jsonb('options').$type<Record<string, unknown>>().notNull(),
  createdAt: createdAt(),
});

/** Code-defined cron tasks: when each last fired (embedded: also what makes a firing run once). */
export const jobSchedules = pgTable('job_schedules', {
  name: text('name').primaryKey(),
  cron: text('cron').notNull(),
  /** The queue its firings go to: where its BullMQ job scheduler lives, to remove it once the code no longer defines it. */
  queue: text('queue'),
  lastRunAt: time('last_run_at'),
});
