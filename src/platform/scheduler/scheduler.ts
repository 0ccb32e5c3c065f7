import { Cron } from 'croner';
import { and, eq, isNull, lt, or, sql } from 'drizzle-orm';
import { inTransaction, type Db } from '../db/database.ts';
import type { Logger } from '../observability/logger.ts';
import type { BullmqJobQueue } from '../queue/bullmq-queue.ts';
import { bullOptions, envelope } from '../queue/bullmq-jobs.ts';
import { assertQueueName, scheduleFiringKey, type EnqueueOptions, type JobHandler, type JobQueue, type ProcessOptions } from '../queue/queue.ts';
import { jobSchedules } from '../queue/schema.ts';

export interface ScheduleDefinition<T = unknown> {
  /** Unique; also the queue the firings run on when `handler` is given. */
  name: string;
  /** Croner/cron syntax, five fields or six with seconds first ("*\/5 * * * * *"). */
  cron: string;
  /** IANA zone the pattern is read in; UTC by default. */
  timezone?: string;
  /** Runs each firing (registered on the queue `name`)… */
  handler?: JobHandler<T>;
  /** …or each firing is enqueued on this queue, whose handler is registered elsewhere. */
  queue?: string;
  data?: T;
  processOptions?: ProcessOptions;
  jobOptions?: Pick<EnqueueOptions, 'attempts' | 'backoffMs' | 'timeoutMs' | 'priority'>;
}

export interface ScheduleInfo {
  name: string;
  cron: string;
  timezone: string;
  queue: string;
  nextRunAt: Date | null;
  /** The last firing this cluster recorded, when known. */
  lastRunAt: Date | null;
}

export interface Scheduler {
  readonly kind: 'cron' | 'bullmq';
  define<T>(def: ScheduleDefinition<T>): void;
  /** Starts firing (workers only): in-process crons, or BullMQ job schedulers upserted. */
  start(): Promise<void>;
  list(): Promise<ScheduleInfo[]>;
  close(): Promise<void>;
}

/**
 * Cron tasks defined in code. Embedded: croner in each worker process, and a
 * firing is claimed in `job_schedules` before its job is enqueued (in the same
 * transaction), so several workers on one database still enqueue it once.
 * Distributed: BullMQ job schedulers, which create one job per firing for the
 * whole cluster however many workers upsert them.
 */
export function createScheduler(deps: { queue: JobQueue; db: Db; logger: Logger }): Scheduler {
  const { queue, db, logger } = deps;
  const bull = queue.kind === 'bullmq' ? (queue as BullmqJobQueue) : undefined;
  const defs = new Map<string, ScheduleDefinition>();
  const crons: Cron[] = [];
  const firing = new Set<Promise<void>>();
  let started = false;
  let closed = false;

  const targetOf = (d: ScheduleDefinition) => d.queue ?? d.name;
  const zone = (d: ScheduleDefinition) => d.timezone ?? 'UTC';
  const pattern = (d: ScheduleDefinition) => new Cron(d.cron, { paused: true, timezone: zone(d) });

  /** Claims the firing `at` in `job_schedules` and enqueues its job in the same transaction: one process wins it. */
  async function fire(d: ScheduleDefinition, at: Date) {
    const fired = await inTransaction(db, async (tx) => {
      const [claimed] = await tx
        .update(jobSchedules)
        .set({ lastRunAt: at })
        .where(and(eq(jobSchedules.name, d.name), or(isNull(jobSchedules.lastRunAt), lt(jobSchedules.lastRunAt, at))))
        .returning();
      if (!claimed) return false;
      await queue.enqueue(targetOf(d), d.data ?? null, { ...d.jobOptions, tx, idempotencyKey: scheduleFiringKey(d.name, at) });
      return true;
    });
    if (fired) logger.debug({ schedule: d.name, at }, 'schedule fired');
  }

  async function startOne(d: ScheduleDefinition) {
    await db
      .insert(jobSchedules)
      .values({ name: d.name, cron: d.cron, queue: targetOf(d) })
      .onConflictDoUpdate({ target: jobSchedules.name, set: { cron: d.cron, queue: targetOf(d) } });
    if (bull) {
      const target = targetOf(d);
      const { jobId: _id, ...opts } = bullOptions('', { ...d.jobOptions });
      await (await bull.bull(target)).upsertJobScheduler(d.name, { pattern: d.cron, tz: zone(d) }, { name: target, data: envelope(d.data ?? null, { ...d.jobOptions }), opts });
      return;
    }
    const cron = new Cron(d.cron, { timezone: zone(d), protect: true }, (self: Cron) => {
      // croner gives the time it woke up, a little after the firing: every process
      // names the firing by the occurrence itself, so they all claim the same one.
      const at = self.previousRuns(1, new Date(Date.now() + 1))[0]!;
      const p = fire(d, at)
        .catch((err) => logger.error({ err, schedule: d.name }, 'schedule firing failed'))
        .finally(() => firing.delete(p));
      firing.add(p);
      return p;
    });
    if (closed) cron.stop();
    else crons.push(cron);
  }

  /**
   * Schedules an earlier version defined and this one does not (removed, or
   * turned off with SCHEDULES): a BullMQ job scheduler lives on in Redis and
   * would keep firing, so it is removed with the schedule's row.
   */
  async function retireUndefined() {
    const rows = await db.select().from(jobSchedules);
    for (const row of rows) {
      if (defs.has(row.name)) continue;
      if (bull) await (await bull.bull(row.queue ?? row.name)).removeJobScheduler(row.name);
      await db.delete(jobSchedules).where(eq(jobSchedules.name, row.name));
      logger.info({ schedule: row.name }, 'schedule no longer defined: removed');
    }
  }

  return {
    kind: bull ? 'bullmq' : 'cron',

    define(d) {
      if (defs.has(d.name)) throw new Error(`Schedule "${d.name}" is already defined`);
      assertQueueName(targetOf(d as ScheduleDefinition));
      if (!d.handler === !d.queue) throw new Error(`Schedule "${d.name}" needs either a handler or a queue`);
      // Throws on a bad pattern or zone here, at definition, not at the first firing.
      pattern(d as ScheduleDefinition).nextRun();
      defs.set(d.name, d as ScheduleDefinition);
      if (d.handler) {
        const handler = d.handler;
        // With BullMQ the firing is not seen here before it runs: the run is what records it.
        const run: JobHandler = bull
          ? async (data, ctx) => {
              // A scheduler's job id ends with its firing time in ms ("repeat:<key>:<ms>").
              const ms = Number(/:(\d+)$/.exec(ctx.id)?.[1]);
              const at = Number.isFinite(ms) ? new Date(ms) : new Date();
              await db
                .update(jobSchedules)
                .set({ lastRunAt: sql`greatest(${jobSchedules.lastRunAt}, ${at.toISOString()}::timestamptz)` })
                .where(eq(jobSchedules.name, d.name));
              return handler(data, ctx);
            }
          : handler;
        queue.process(d.name, run, d.processOptions);
      }
      if (started) startOne(d as ScheduleDefinition).catch((err) => logger.error({ err, schedule: d.name }, 'starting a schedule failed'));
    },

    async start() {
      if (started) return;
      started = true;
      await retireUndefined();
      await Promise.all([...defs.values()].map(startOne));
    },

    async list() {
      const rows = await db.select().from(jobSchedules);
      const last = new Map(rows.map((r) => [r.name, r.lastRunAt]));
      return Promise.all(
        [...defs.values()].map(async (d) => {
          let next = pattern(d).nextRun();
          // Without Redis, the next firing as the cron pattern has it, rather than waiting for BullMQ's.
          if (bull?.reachable()) {
            const s = await (await bull.bull(targetOf(d))).getJobScheduler(d.name);
            if (s?.next) next = new Date(s.next);
          }
          return { name: d.name, cron: d.cron, timezone: zone(d), queue: targetOf(d), nextRunAt: next, lastRunAt: last.get(d.name) ?? null };
        }),
      );
    },

    async close() {
      closed = true;
      for (const c of crons) c.stop();
      crons.length = 0;
      await Promise.all(firing);
    },
  };
}
