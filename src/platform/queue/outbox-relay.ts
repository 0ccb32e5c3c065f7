import { asc, inArray, sql, type SQLWrapper } from 'drizzle-orm';
import type { Db } from '../db/database.ts';
import type { Logger } from '../observability/logger.ts';
import { listenPostgres } from './pg-listen.ts';
import type { EnqueueOptions } from './queue.ts';
import { jobOutbox } from './schema.ts';

export type OutboxOptions = Omit<EnqueueOptions, 'tx' | 'idempotencyKey'>;

const CHANNEL = 'parley_job_outbox';
const BATCH = 500;
/** The session advisory lock the relay that drains holds (PostgreSQL); its value is arbitrary, unique among Parley's locks. */
const RELAY_LOCK = 0x5072_6c79;

/**
 * Moves committed `job_outbox` rows to the queue, then deletes them. Adding
 * is idempotent (the row id is the job id), so a crash between adding and
 * deleting, or two relays on the same rows, still queue each job once.
 * Woken by a NOTIFY sent in the enqueuing transaction (delivered at commit,
 * PostgreSQL), by an in-process nudge, and by a short poll.
 *
 * On PostgreSQL every process has a relay, but one drains: the one whose
 * LISTEN connection holds a session advisory lock. The others try to take
 * it at each poll, so when the leader's process or connection goes, another
 * drains within a poll. Otherwise every process woke on every commit, read
 * the same rows and added the same jobs again.
 */
export function createOutboxRelay(opts: {
  db: Db;
  logger: Logger;
  listenUrl?: string;
  pollMs?: number;
  add: (queue: string, jobs: Array<{ id: string; data: unknown; options: OutboxOptions }>) => Promise<void>;
}) {
  const { db, logger } = opts;
  let running: Promise<void> | undefined;
  let again = false;
  let closed = false;

  async function drain() {
    for (;;) {
      const rows = await db.select().from(jobOutbox).orderBy(asc(jobOutbox.id)).limit(BATCH);
      if (!rows.length) return;
      const byQueue = Map.groupBy(rows, (r) => r.queue);
      for (const [queue, list] of byQueue) {
        await opts.add(
          queue,
          list.map((r) => {
            const options = { ...(r.options as OutboxOptions) };
            // A delay counts from the enqueue, not from the relay.
            if (options.delayMs) options.delayMs = Math.max(0, r.createdAt.getTime() + options.delayMs - Date.now());
            return { id: r.id, data: r.data, options };
          }),
        );
      }
      await db.delete(jobOutbox).where(inArray(jobOutbox.id, rows.map((r) => r.id)));
      if (rows.length < BATCH) return;
    }
  }

  /** Whether this relay drains now. On a poll (not on a NOTIFY, which every process gets) one that does not tries to become the one. */
  async function leads(polled: boolean): Promise<boolean> {
    if (!listener) return true;
    if (listener.holds(RELAY_LOCK)) return true;
    return polled && listener.tryLock(RELAY_LOCK);
  }

  function run(polled = false) {
    if (closed) return;
    if (running) {
      again = true;
      return;
    }
    running = (async () => {
      do {
        again = false;
        try {
          if (await leads(polled)) await drain();
        } catch (err) {
          if (!closed) logger.error({ err }, 'outbox relay failed; retrying on the next poll');
          return;
        }
      } while (again && !closed);
    })().finally(() => {
      running = undefined;
    });
  }

  const timer = setInterval(() => run(true), opts.pollMs ?? 500);
  timer.unref();
  const listener = opts.listenUrl ? listenPostgres(opts.listenUrl, CHANNEL, () => run(), logger) : undefined;
  void listener?.ready.then(() => run(true));
  run(true);

  return {
    /** Called with the enqueuing transaction: on PostgreSQL a NOTIFY at commit; elsewhere soon after. */
    async nudge(tx: Db) {
      if (listener) await tx.execute(sql`select pg_notify(${CHANNEL}, '')`);
      // PGlite runs one transaction at a time, so a read queued now happens after the commit.
      else setImmediate(run);
    },
    /** Runs `insert` (of outbox rows) in the enqueuing transaction and nudges: on PostgreSQL one statement, the NOTIFY in it. */
    async insert(tx: Db, insert: SQLWrapper) {
      if (listener) {
        await tx.execute(sql`with rows as (${insert.getSQL()}) select pg_notify(${CHANNEL}, '')`);
        return;
      }
      await tx.execute(insert.getSQL());
      await this.nudge(tx);
    },
    async close() {
      closed = true;
      clearInterval(timer);
      await running;
      await listener?.close();
    },
  };
}
