import { and, desc, eq, gt, lt, lte, sql, type SQL } from 'drizzle-orm';
import { InvalidCursor } from '../../errors.ts';
import { uuidv7 } from 'uuidv7';
import type { Db } from '../db/database.ts';
import { backoffDelay, decodeListCursor, DEFAULTS, encodeListCursor, errorMessage, FinalJobError, publicJobError, storableJson, type EnqueueOptions, type Job, type ListQuery } from './queue.ts';
import { jobs } from './schema.ts';

/** The statements of the database queue over the `jobs` table (db-queue.ts runs them). */
export type JobRow = typeof jobs.$inferSelect;

const ms = (n: number) => sql`make_interval(secs => ${n / 1000})`;

/** A JSON value for a jsonb column: Drizzle sends a JS null as SQL NULL, which `data` refuses. */
export const jsonb = (value: unknown) => (value === undefined || value === null ? sql`'null'::jsonb` : value);

const jobValues = (queue: string, data: unknown, o: EnqueueOptions) => ({
  queue,
  data: jsonb(data),
  priority: o.priority ?? 0,
  runAt: o.delayMs ? sql`now() + ${ms(o.delayMs)}` : sql`now()`,
  maxAttempts: o.attempts ?? DEFAULTS.attempts,
  backoffMs: o.backoffMs ?? DEFAULTS.backoffMs,
  timeoutMs: o.timeoutMs ?? null,
  userId: o.userId ?? null,
  idempotencyKey: o.idempotencyKey ?? null,
});

/** Jobs without a key, in one statement; their ids in the order given. */
export async function insertJobs(tx: Db, queue: string, data: unknown[], o: EnqueueOptions): Promise<string[]> {
  // Ids made here (uuidv7, in order), so RETURNING's order does not matter.
  const rows = data.map((d) => ({ ...jobValues(queue, d, o), id: uuidv7() }));
  await tx.insert(jobs).values(rows);
  return rows.map((r) => r.id);
}

export async function insertJob(tx: Db, queue: string, data: unknown, o: EnqueueOptions): Promise<{ row: JobRow; created: boolean }> {
  const [row] = await tx
    .insert(jobs)
    .values(jobValues(queue, data, o))
    .onConflictDoNothing({ target: [jobs.queue, jobs.idempotencyKey] })
    .returning();
  if (row) return { row, created: true };
  const [existing] = await tx.select().from(jobs).where(and(eq(jobs.queue, queue), eq(jobs.idempotencyKey, o.idempotencyKey!)));
  return { row: existing!, created: false };
}

/**
 * Which of `queues` have a job due: one statement for every queue a worker
 * serves (an index probe each, inside the database), where claiming from each
 * queue in turn cost a round trip apiece (on PGlite, tens of ms of the event
 * loop every poll, most of an idle server's CPU).
 */
export async function dueQueues(db: Db, queues: string[]): Promise<string[]> {
  if (!queues.length) return [];
  // Both drivers answer execute() with `{ rows }`; Drizzle types it per driver.
  const result = (await db.execute(sql`
    select q.queue from unnest(${sql.param(queues)}::text[]) as q(queue)
    where exists (select 1 from ${jobs} where ${jobs.queue} = q.queue and ${jobs.state} = 'waiting' and ${jobs.runAt} <= now())`)) as unknown as {
    rows: Array<{ queue: string }>;
  };
  return result.rows.map((r) => r.queue);
}

/**
 * Takes up to `limit` due jobs of a queue, most urgent first, leased for
 * `lockMs`; SKIP LOCKED lets concurrent workers take different rows.
 */
export async function claim(db: Db, queue: string, lockMs: number, limit: number): Promise<JobRow[]> {
  const due = sql`(select id from ${jobs} where ${jobs.queue} = ${queue} and ${jobs.state} = 'waiting' and ${jobs.runAt} <= now()
                   order by ${jobs.priority}, ${jobs.runAt}, ${jobs.id} limit ${limit} for update skip locked)`;
  const rows = await db
    .update(jobs)
    .set({ state: 'active', attempts: sql`${jobs.attempts} + 1`, startedAt: sql`now()`, lockedUntil: sql`now() + ${ms(lockMs)}`, finishedAt: null })
    // ARRAY(…) runs the locking subquery once (an InitPlan): never more rows than `limit`.
    .where(sql`${jobs.id} = any(array${due})`)
    .returning();
  // RETURNING keeps no order: start them in the order they were chosen.
  return rows.sort((a, b) => a.priority - b.priority || a.runAt.getTime() - b.runAt.getTime() || (a.id < b.id ? -1 : 1));
}

/** The owner's form of the last error goes with it: a new `last_error` not written for users clears it. */
const noPublicError = { publicError: null, errorCode: null };

/** Only the attempt that holds a job may touch it: a reclaimed one belongs to another worker now. */
const held = (row: Pick<JobRow, 'id' | 'attempts'>) => and(eq(jobs.id, row.id), eq(jobs.state, 'active'), eq(jobs.attempts, row.attempts));

/** The heartbeat of a live worker: its running jobs stay its own for another `lockMs`. */
export async function renew(db: Db, running: Array<Pick<JobRow, 'id' | 'attempts'>>, lockMs: number): Promise<void> {
  if (!running.length) return;
  const pairs = sql.join(running.map((r) => sql`(${r.id}::uuid, ${r.attempts}::int)`), sql`, `);
  await db
    .update(jobs)
    .set({ lockedUntil: sql`now() + ${ms(lockMs)}` })
    .where(and(eq(jobs.state, 'active'), sql`(${jobs.id}, ${jobs.attempts}) in (${pairs})`));
}

/** Jobs whose worker died (lease lapsed): back to waiting, or dead if that was the last attempt. */
export async function reclaim(db: Db): Promise<string[]> {
  const last = sql`${jobs.attempts} >= ${jobs.maxAttempts}`;
  const lost = await db
    .update(jobs)
    .set({
      state: sql`case when ${last} then 'dead' else 'waiting' end`,
      lastError: 'The worker running this job stopped answering',
      ...noPublicError,
      runAt: sql`now()`,
      lockedUntil: null,
      finishedAt: sql`case when ${last} then now() end`,
    })
    .where(and(eq(jobs.state, 'active'), lt(jobs.lockedUntil, sql`now()`)))
    .returning({ id: jobs.id });
  return lost.map((j) => j.id);
}

export type Outcome = { result: unknown } | { error: unknown } | { released: string };

/** Records how an attempt ended: completed; failed (retried after a backoff, or dead); or given back untried (shutdown). */
export async function settle(db: Db, row: JobRow, outcome: Outcome): Promise<'completed' | 'retry' | 'dead' | 'released'> {
  if ('result' in outcome) {
    await db.update(jobs).set({ state: 'completed', result: jsonb(storableJson(outcome.result)), lastError: null, ...noPublicError, finishedAt: sql`now()`, lockedUntil: null }).where(held(row));
    return 'completed';
  }
  if ('released' in outcome) {
    // Not the job's fault: the attempt is given back, and it runs again at once.
    await db
      .update(jobs)
      .set({ state: 'waiting', attempts: sql`${jobs.attempts} - 1`, lastError: outcome.released, ...noPublicError, runAt: sql`now()`, lockedUntil: null })
      .where(held(row));
    return 'released';
  }
  const shown = publicJobError(outcome.error);
  const error = { lastError: errorMessage(outcome.error), publicError: shown?.message ?? null, errorCode: shown?.code ?? null };
  if (row.attempts < row.maxAttempts && !(outcome.error instanceof FinalJobError)) {
    const delay = backoffDelay(row.attempts, row.backoffMs);
    await db.update(jobs).set({ state: 'waiting', ...error, runAt: sql`now() + ${ms(delay)}`, lockedUntil: null }).where(held(row));
    return 'retry';
  }
  await db.update(jobs).set({ state: 'dead', ...error, finishedAt: sql`now()`, lockedUntil: null }).where(held(row));
  return 'dead';
}

export async function setProgress(db: Db, row: JobRow, value: unknown): Promise<void> {
  await db.update(jobs).set({ progress: jsonb(value) as never }).where(held(row));
}

export const toJob = (row: JobRow): Job => ({
  id: row.id,
  queue: row.queue,
  state: row.state === 'waiting' && row.runAt.getTime() > Date.now() ? 'delayed' : row.state,
  data: row.data,
  userId: row.userId,
  priority: row.priority,
  attempts: row.attempts,
  maxAttempts: row.maxAttempts,
  progress: row.progress,
  result: row.result ?? null,
  error: row.lastError,
  publicError: row.lastError !== null && row.publicError !== null && row.errorCode !== null ? { message: row.publicError, code: row.errorCode } : null,
  createdAt: row.createdAt,
  startedAt: row.startedAt,
  finishedAt: row.finishedAt,
});

export async function byId(db: Db, id: string): Promise<JobRow | undefined> {
  if (!isUuid(id)) return undefined;
  return (await db.select().from(jobs).where(eq(jobs.id, id)))[0];
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Job ids in the database are uuid columns: any other id is no row there, and would fail the query. */
export const isUuid = (id: string) => UUID.test(id);

/** Newest first; the cursor is the last id shown (and the filters, see encodeListCursor). */
export async function listJobs(db: Db, q: ListQuery): Promise<{ jobs: Job[]; nextCursor: string | null }> {
  const where: Array<SQL | undefined> = [q.queue ? eq(jobs.queue, q.queue) : undefined];
  if (q.state === 'waiting') where.push(eq(jobs.state, 'waiting'), lte(jobs.runAt, sql`now()`));
  else if (q.state === 'delayed') where.push(eq(jobs.state, 'waiting'), gt(jobs.runAt, sql`now()`));
  else if (q.state) where.push(eq(jobs.state, q.state));
  const after = decodeListCursor(q);
  if (after !== undefined && (typeof after !== 'string' || !UUID.test(after))) throw InvalidCursor();
  if (after) where.push(lt(jobs.id, after));
  const rows = await db.select().from(jobs).where(and(...where)).orderBy(desc(jobs.id)).limit(q.limit + 1);
  const page = rows.slice(0, q.limit);
  return { jobs: page.map(toJob), nextCursor: rows.length > q.limit ? encodeListCursor(q, page[page.length - 1]!.id) : null };
}
