import { createHash } from 'node:crypto';
import type { Job as BullJob, JobsOptions, JobType, Queue } from 'bullmq';
import { InvalidCursor } from '../../errors.ts';
import type { OutboxOptions } from './outbox-relay.ts';
import { decodeListCursor, DEFAULTS, encodeListCursor, type Job, type JobState, type ListQuery, type PublicJobError } from './queue.ts';
import type { jobOutbox } from './schema.ts';

/** How Parley's jobs map onto BullMQ's (bullmq-queue.ts uses these). */

/** What a BullMQ job carries: the caller's data, its owner, its own timeout; once an attempt failed, its public error. */
export interface Envelope {
  d: unknown;
  u: string | null;
  t: number | null;
  e?: PublicFailure;
}

/**
 * The owner's form of a failed attempt's error (publicJobError), written into the job's data by its worker before
 * BullMQ records the failure (as `failedReason`, the thrown error's message). `r` tags the reason it goes with:
 * a later failure BullMQ records by itself (a job stalled too often) keeps the data as it was, and must not be told
 * with an earlier attempt's words.
 */
export interface PublicFailure {
  m: string;
  c: string;
  r: string;
}

/** A short tag of a failure's reason (`failedReason`), not the reason itself: the data need not hold it twice. */
export const reasonTag = (reason: string): string => createHash('sha256').update(reason).digest('base64url').slice(0, 16);

export function publicFailure(shown: PublicJobError, reason: string): PublicFailure {
  return { m: shown.message, c: shown.code, r: reasonTag(reason) };
}

export const envelope = (data: unknown, o: OutboxOptions): Envelope => ({ d: data ?? null, u: o.userId ?? null, t: o.timeoutMs ?? null });

/** Finished jobs stay readable (`GET /v1/jobs/{id}`, idempotency keys) for a day; dead ones until discarded. */
const KEEP_COMPLETED = { age: 24 * 3600, count: 10_000 };

export function bullOptions(id: string, o: OutboxOptions): JobsOptions {
  return {
    jobId: id,
    attempts: o.attempts ?? DEFAULTS.attempts,
    backoff: { type: 'exponential', delay: o.backoffMs ?? DEFAULTS.backoffMs, jitter: 0.5 },
    // BullMQ runs jobs without a priority before prioritized ones: the same order as 0 first.
    priority: o.priority || undefined,
    delay: o.delayMs || undefined,
    removeOnComplete: KEEP_COMPLETED,
    removeOnFail: false,
  };
}

const STATE_TYPES: Record<JobState, JobType[]> = {
  waiting: ['waiting', 'prioritized'],
  delayed: ['delayed'],
  active: ['active'],
  completed: ['completed'],
  dead: ['failed'],
};

export function stateOf(s: string): JobState | undefined {
  if (s === 'failed') return 'dead';
  if (s === 'prioritized' || s === 'waiting' || s === 'waiting-children') return 'waiting';
  if (s === 'delayed' || s === 'active' || s === 'completed') return s;
  return undefined;
}

export async function toJob(job: BullJob, knownState?: JobState): Promise<Job | undefined> {
  const state = knownState ?? stateOf(await job.getState());
  if (!state) return undefined;
  const env = job.data as Partial<Envelope> | undefined;
  const error = state === 'completed' ? null : job.failedReason || null;
  return {
    id: job.id!,
    queue: job.queueName,
    state,
    data: env?.d ?? null,
    userId: env?.u ?? null,
    priority: job.opts.priority ?? 0,
    attempts: job.attemptsStarted,
    maxAttempts: job.opts.attempts ?? 1,
    progress: (job.progress as Job['progress']) ?? 0,
    result: job.returnvalue ?? null,
    error,
    publicError: error && env?.e && env.e.r === reasonTag(error) ? { message: env.e.m, code: env.e.c } : null,
    createdAt: new Date(job.timestamp),
    startedAt: job.processedOn ? new Date(job.processedOn) : null,
    finishedAt: (state === 'completed' || state === 'dead') && job.finishedOn ? new Date(job.finishedOn) : null,
  };
}

/** A job still in the outbox (committed, not yet relayed): it reads as waiting. */
export function pending(row: typeof jobOutbox.$inferSelect): Job {
  const o = row.options as OutboxOptions;
  return {
    id: row.id,
    queue: row.queue,
    state: 'waiting',
    data: row.data,
    userId: o.userId ?? null,
    priority: o.priority ?? 0,
    attempts: 0,
    maxAttempts: o.attempts ?? DEFAULTS.attempts,
    progress: 0,
    result: null,
    error: null,
    publicError: null,
    createdAt: row.createdAt,
    startedAt: null,
    finishedAt: null,
  };
}

interface Position {
  /** Index of the (queue, BullMQ list) source, and the offset in it. */
  s: number;
  o: number;
}

/**
 * Walks the (queue, BullMQ list) pairs a query covers, one after the other,
 * each in BullMQ's own order; the cursor is where the next page starts. Every
 * job is listed once even across lists of different orders (waiting and
 * prioritized), which a merge by time over offsets cannot promise. An offset means something only in
 * the lists of the filters it was made for: the cursor carries them (encodeListCursor).
 */
export async function listJobs(queues: Queue[], q: ListQuery): Promise<{ jobs: Job[]; nextCursor: string | null }> {
  const states = q.state ? [q.state] : (Object.keys(STATE_TYPES) as JobState[]);
  const sources = queues.flatMap((queue) => states.flatMap((state) => STATE_TYPES[state].map((type) => ({ queue, state, type }))));
  let pos: Position = { s: 0, o: 0 };
  if (q.cursor) {
    const p = decodeListCursor(q) as Position | null;
    // Safe integers only: an offset like 1e300 would reach Redis as "1e+300", which it refuses.
    if (!p || typeof p !== 'object' || !Number.isSafeInteger(p.s) || !Number.isSafeInteger(p.o) || p.s < 0 || p.o < 0) throw InvalidCursor();
    pos = { s: p.s, o: p.o };
  }
  const found: Array<{ job: BullJob; state: JobState; at: Position }> = [];
  // The lists are read one after another, not as one snapshot: a job that moves on between two reads
  // (waiting, then active, then completed) would show up twice, so each id is kept once.
  const seen = new Set<string>();
  while (pos.s < sources.length && found.length <= q.limit) {
    const { queue, state, type } = sources[pos.s]!;
    const want = q.limit + 1 - found.length;
    const batch = await queue.getJobs([type], pos.o, pos.o + want - 1);
    batch.forEach((job, i) => {
      if (!job?.id || seen.has(job.id)) return;
      seen.add(job.id);
      found.push({ job, state, at: { s: pos.s, o: pos.o + i } });
    });
    pos = batch.length < want ? { s: pos.s + 1, o: 0 } : { s: pos.s, o: pos.o + batch.length };
  }
  const page = await Promise.all(found.slice(0, q.limit).map(({ job, state }) => toJob(job, state)));
  const next = found[q.limit]?.at;
  return { jobs: page.filter((j): j is Job => Boolean(j)), nextCursor: next ? encodeListCursor(q, next) : null };
}
