import { createHash } from 'node:crypto';
import { AppError, Conflict, InvalidCursor, ValidationError } from '../../errors.ts';
import type { Db } from '../db/database.ts';
import { storableText } from '../text.ts';

/**
 * The job queue port. Two adapters: a durable queue in the database
 * (db-queue.ts, embedded and PostgreSQL without Redis) and BullMQ on Redis
 * (bullmq-queue.ts). Both run the same tests.
 *
 * A queue name is also the job's kind: one handler per queue, registered with
 * `process()`, runs only once `start()` was called (the worker role).
 */
export const JOB_STATES = ['waiting', 'delayed', 'active', 'completed', 'dead'] as const;
export type JobState = (typeof JOB_STATES)[number];

export type JobProgress = number | Record<string, unknown>;

export interface Job<T = unknown> {
  /** Stable across the job's life; what `GET /v1/jobs/{id}` takes. */
  id: string;
  queue: string;
  state: JobState;
  data: T;
  /** Whose job it is (who may read it through the API); null for system work. */
  userId: string | null;
  priority: number;
  /** Attempts started so far. */
  attempts: number;
  maxAttempts: number;
  progress: JobProgress;
  result: unknown;
  /** The last attempt's error, whole (for admins and the logs): set on a dead job, and on one waiting for its next try. */
  error: string | null;
  /** The same error as its owner may read it, when it was written for users (see publicJobError); null otherwise. */
  publicError: PublicJobError | null;
  createdAt: Date;
  startedAt: Date | null;
  finishedAt: Date | null;
}

export interface EnqueueOptions {
  userId?: string | null;
  /** Lower runs first; 0 (the default) is the most urgent. */
  priority?: number;
  delayMs?: number;
  /** Attempts in all, the first included. Default 3. */
  attempts?: number;
  /** First retry delay; each next one doubles, with jitter (half to all of it). Default 1 s. */
  backoffMs?: number;
  /** Overrides the queue's timeout for this job. */
  timeoutMs?: number;
  /** A job with the same key on the same queue is enqueued once; later calls return it. */
  idempotencyKey?: string;
  /** Enqueue as part of this transaction: nothing is queued if it rolls back (outbox). */
  tx?: Db;
}

export interface JobContext {
  id: string;
  /** The queue the job is on (also its kind). */
  queue: string;
  /** Whose job it is; null for system work. */
  userId: string | null;
  /** 1 on the first try. */
  attempt: number;
  /** Attempts in all: the job is dead when `attempt` reaches this and fails. */
  maxAttempts: number;
  /** Aborted when the attempt times out or the worker shuts down. */
  signal: AbortSignal;
  progress(value: JobProgress): Promise<void>;
}

export type JobHandler<T = any, R = unknown> = (data: T, ctx: JobContext) => Promise<R>;

export interface ProcessOptions {
  /** Jobs of this queue run at once in this process. Default 1. */
  concurrency?: number;
  /** An attempt still running after this long fails with `JobTimeoutError`. Default 60 s. */
  timeoutMs?: number;
  /**
   * What its jobs do must happen (an account's erasure): an admin cannot discard one that has not completed
   * (409 `job_must_run`); a dead one is retried. Kept by the jobs module, which the admin routes go through.
   */
  mustRun?: boolean;
}

export interface ListQuery {
  state?: JobState;
  queue?: string;
  limit: number;
  /** Opaque, from a previous page's `nextCursor`. */
  cursor?: string;
}

export interface JobQueue {
  readonly kind: 'database' | 'bullmq';
  enqueue<T>(queue: string, data: T, opts?: EnqueueOptions): Promise<Job<T>>;
  /**
   * Several jobs of one queue with the same options, in one write (one
   * statement in a transaction); returns their ids in order. No idempotency
   * key: a batch is for jobs that are new by construction.
   */
  enqueueMany<T>(queue: string, data: T[], opts?: Omit<EnqueueOptions, 'idempotencyKey'>): Promise<string[]>;
  /** Registers the handler of a queue; it runs jobs once `start()` is called. */
  process<T = any, R = unknown>(queue: string, handler: JobHandler<T, R>, opts?: ProcessOptions): void;
  /** Starts running the registered handlers (and any registered later). */
  start(): Promise<void>;
  get(id: string): Promise<Job | undefined>;
  list(query: ListQuery): Promise<{ jobs: Job[]; nextCursor: string | null }>;
  /** A dead job back to waiting, with its attempts reset. */
  retry(id: string): Promise<Job>;
  /**
   * Removes a job that is not running (409 `job_active`), nor a schedule's run that has not started
   * (409 `job_scheduled`, see scheduledRunKept).
   */
  discard(id: string): Promise<void>;
  /**
   * Deletes completed jobs that finished before `before` and returns how many
   * (dead ones stay until retried or discarded). BullMQ trims its own completed
   * jobs (a day, or the last 10,000) and returns 0. A purged keyed job no longer
   * blocks its idempotency key.
   */
  purgeFinished(before: Date): Promise<number>;
  /** Stops taking jobs and waits (bounded) for the running ones. */
  close(): Promise<void>;
}

/**
 * A job list's `nextCursor`: where the next page starts (`at`, the adapter's own), with the filters of the list
 * that made it. Used with other filters it would resume another list at a place that means nothing there (BullMQ's
 * is an offset into the filtered lists): that is the 400 of a cursor the list never made, on both adapters.
 */
export function encodeListCursor(q: Pick<ListQuery, 'state' | 'queue'>, at: unknown): string {
  return Buffer.from(JSON.stringify({ at, f: [q.state ?? null, q.queue ?? null] })).toString('base64url');
}

/** The `at` of the query's cursor (undefined without one); InvalidCursor when its list had other filters, or it is no list's. */
export function decodeListCursor(q: ListQuery): unknown {
  if (q.cursor === undefined) return undefined;
  let c: { at?: unknown; f?: unknown } | undefined;
  try {
    c = JSON.parse(Buffer.from(q.cursor, 'base64url').toString('utf8')) as typeof c;
  } catch {}
  const f = c && typeof c === 'object' ? c.f : undefined;
  if (!Array.isArray(f) || f.length !== 2 || f[0] !== (q.state ?? null) || f[1] !== (q.queue ?? null) || c!.at === undefined) throw InvalidCursor();
  return c!.at;
}

export const DEFAULTS = { attempts: 3, backoffMs: 1000, timeoutMs: 60_000, concurrency: 1, lockMs: 30_000 };

/** BullMQ's range, kept on both adapters so a job means the same on either. */
export const MAX_PRIORITY = 2_097_151;

/** Refuses options neither adapter could honour, before anything is written. */
export function assertEnqueueOptions(queue: string, o: EnqueueOptions): void {
  assertQueueName(queue);
  const bad = (field: string, rule: string) => {
    throw ValidationError(`Job option ${field} must be ${rule}`);
  };
  const int = (v: number | undefined, min: number, max = Number.MAX_SAFE_INTEGER) => v === undefined || (Number.isInteger(v) && v >= min && v <= max);
  if (!int(o.priority, 0, MAX_PRIORITY)) bad('priority', `an integer from 0 to ${MAX_PRIORITY}`);
  if (!int(o.attempts, 1, 1000)) bad('attempts', 'an integer from 1 to 1000');
  if (!int(o.delayMs, 0)) bad('delayMs', 'a whole number of milliseconds, 0 or more');
  if (!int(o.backoffMs, 0, 2 ** 31 - 1)) bad('backoffMs', 'a whole number of milliseconds, 0 or more');
  if (!int(o.timeoutMs, 1, 2 ** 31 - 1)) bad('timeoutMs', 'a whole number of milliseconds, 1 or more');
  if (o.idempotencyKey !== undefined && (o.idempotencyKey.length < 1 || o.idempotencyKey.length > 255)) bad('idempotencyKey', '1 to 255 characters');
}

export class JobTimeoutError extends Error {
  constructor(ms: number) {
    super(`Job timed out after ${ms} ms`);
    this.name = 'JobTimeoutError';
  }
}

/**
 * Thrown by a handler whose failure no later attempt can change (a provider refusing the request as it
 * is): the job is dead at once, whatever attempts it had left.
 */
export class FinalJobError extends Error {}

/** An error a job's owner may be told as it is, with its stable code. */
export interface PublicJobError {
  message: string;
  code: string;
}

/**
 * The error as a job's owner may see it, or null when its text was not written for users: Parley's own errors
 * (AppError: its message and code) and a timeout are; anything else (a driver's or a library's message, which
 * can name internal hosts, queries, paths) is told to admins and the logs only. A FinalJobError is what it wraps.
 */
export function publicJobError(err: unknown): PublicJobError | null {
  if (err instanceof AppError) return { message: storableText(err.message), code: err.code };
  if (err instanceof JobTimeoutError) return { message: err.message, code: 'job_timed_out' };
  if (err instanceof FinalJobError) return publicJobError(err.cause);
  return null;
}

/** Exponential backoff with jitter, as BullMQ computes it with `jitter: 0.5`: between half and all of base·2^(n−1). */
export function backoffDelay(attemptsMade: number, baseMs: number, random = Math.random()): number {
  const max = Math.round(2 ** (attemptsMade - 1) * baseMs);
  return Math.floor(random * max * 0.5 + max * 0.5);
}

/**
 * Runs one attempt, and stops waiting for it at the timeout whether or not the
 * handler honours its signal: the attempt fails, the slot is freed.
 */
export async function runAttempt<R>(run: (signal: AbortSignal) => Promise<R>, timeoutMs: number, outer?: AbortSignal): Promise<R> {
  const ac = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  let onOuter: (() => void) | undefined;
  const stopped = new Promise<never>((_, reject) => {
    const stop = (err: unknown) => {
      ac.abort(err);
      reject(err);
    };
    timer = setTimeout(() => stop(new JobTimeoutError(timeoutMs)), timeoutMs);
    onOuter = () => stop(outer!.reason ?? new Error('Aborted'));
    if (outer?.aborted) onOuter();
    else outer?.addEventListener('abort', onOuter, { once: true });
  });
  try {
    return await Promise.race([Promise.resolve().then(() => run(ac.signal)), stopped]);
  } finally {
    clearTimeout(timer);
    outer?.removeEventListener('abort', onOuter!);
  }
}

/**
 * A value for a jsonb column with every string in it, keys included, storable (see storableText); most values pass
 * unchanged. A job whose outcome could not be written would stay active until its lease lapsed, then run again, and again.
 */
export function storableJson(value: unknown): unknown {
  const json = JSON.stringify(value);
  if (json === undefined || !/\\u0000|\\ud[89a-f]/i.test(json)) return value;
  return JSON.parse(json, (_key, v: unknown) => {
    if (typeof v === 'string') return storableText(v);
    if (v && typeof v === 'object' && !Array.isArray(v)) return Object.fromEntries(Object.entries(v).map(([k, x]) => [storableText(k), x]));
    return v;
  });
}

/** An error as a job stores it (see storableText): an error's text is often what an upstream sent. */
export const errorMessage = (err: unknown) => storableText(err instanceof Error ? `${err.name === 'Error' ? '' : `${err.name}: `}${err.message}` : String(err));

/** A UUID-shaped id derived from a queue and an idempotency key, so a keyed job always gets the same id. */
export function keyedJobId(queue: string, key: string): string {
  const h = createHash('sha256').update(`${queue}\0${key}`).digest('hex');
  // Version 8 (custom) and the RFC 4122 variant, so it still parses as a UUID.
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-8${h.slice(13, 16)}-${((parseInt(h[16]!, 16) & 0x3) | 0x8).toString(16)}${h.slice(17, 20)}-${h.slice(20, 32)}`;
}

export const QUEUE_NAME = /^[a-z0-9][a-z0-9._-]{0,63}$/;

export function assertQueueName(name: string): void {
  if (!QUEUE_NAME.test(name)) throw new Error(`Invalid queue name "${name}": lowercase letters, digits, ".", "_" and "-", up to 64`);
}

/** A schedule's firing at `at`, as the scheduler enqueues it (its idempotency key: one firing per due time). */
export const scheduleFiringKey = (name: string, at: Date) => `schedule:${name}:${at.toISOString()}`;

/** The schedule a job's idempotency key names it a firing of (scheduleFiringKey), if it is one. */
export const scheduleOfFiring = (key: string | null | undefined) => /^schedule:(.+):\d{4}-\d\d-\d\dT[\d:.]+Z$/.exec(key ?? '')?.[1];

/**
 * A schedule's run that has not started cannot be discarded, on either queue: BullMQ refuses to remove its job
 * scheduler's next job (delayed, then waiting until a worker takes it), and the database queue's firing,
 * enqueued when it came due and not yet taken, is kept alike. Once started (dead, completed) it goes like any job.
 * Skipping a schedule's runs is its setting's work.
 */
export const scheduledRunKept = (schedule: string) =>
  Conflict(
    `This job is a run of the schedule "${schedule}" that has not started: it cannot be discarded. To stop the schedule's runs, turn it off or move it with SCHEDULES ("${schedule}=off") and restart the workers`,
    'job_scheduled',
  );
