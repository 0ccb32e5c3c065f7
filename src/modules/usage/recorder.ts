import { sql } from 'drizzle-orm';
import { uuidv7 } from 'uuidv7';
import type { Db } from '../../platform/db/database.ts';
import type { Logger } from '../../platform/observability/logger.ts';
import { apiRequestsDaily, apiRequestsDailyRoutes, usageEvents } from './schema.ts';

export type UsageEvent = typeof usageEvents.$inferInsert;

/** Each column's SQL type and how to read it from an event, in table order. */
const COLUMNS: Array<[column: string, type: string, value: (e: UsageEvent) => unknown]> = [
  ['id', 'uuid', (e) => e.id ?? uuidv7()],
  ['occurred_at', 'timestamptz', (e) => e.occurredAt.toISOString()],
  ['user_id', 'uuid', (e) => e.userId],
  ['api_key_id', 'uuid', (e) => e.apiKeyId ?? null],
  ['project_id', 'uuid', (e) => e.projectId ?? null],
  ['conversation_id', 'uuid', (e) => e.conversationId ?? null],
  ['message_id', 'uuid', (e) => e.messageId ?? null],
  ['source', 'text', (e) => e.source],
  ['provider', 'text', (e) => e.provider],
  ['model', 'text', (e) => e.model],
  ['input_tokens', 'integer', (e) => e.inputTokens ?? 0],
  ['output_tokens', 'integer', (e) => e.outputTokens ?? 0],
  ['cached_tokens', 'integer', (e) => e.cachedTokens ?? 0],
  ['cost_micros', 'bigint', (e) => e.costMicros ?? null],
  ['latency_ms', 'integer', (e) => e.latencyMs],
  ['ttft_ms', 'integer', (e) => e.ttftMs ?? null],
  ['status', 'text', (e) => e.status],
  ['prompt_hash', 'text', (e) => e.promptHash ?? null],
  ['attempts', 'jsonb', (e) => JSON.stringify(e.attempts ?? [])],
];

/**
 * One INSERT … SELECT FROM unnest(one array per column): the statement is the
 * same whatever the batch size, where a multi-row VALUES built by the query
 * builder cost over 100 µs of CPU per event (measured in bench:gateway).
 */
function insertEvents(db: Db, events: UsageEvent[]) {
  const arrays = sql.join(
    COLUMNS.map(([, type, value]) => sql`${sql.param(events.map(value))}::${sql.raw(type)}[]`),
    sql`, `,
  );
  const names = sql.join(COLUMNS.map(([column]) => sql.identifier(column)), sql`, `);
  // An event already written is skipped: a call given its usage event id (MeterContext.usageEventId) and run again after a crash is charged once.
  return db.execute(sql`insert into ${usageEvents} (${names}) select ${names} from unnest(${arrays}) as u(${names}) on conflict (id) do nothing`);
}

export interface RecorderOptions {
  /** Written at the latest this long after being recorded: the most a crash can lose. */
  flushIntervalMs: number;
  /** A batch this large is written at once, without waiting for the interval. */
  maxBatch: number;
  /** Kept while the database is unreachable; beyond it the oldest are dropped (and logged). */
  maxPending: number;
  logger?: Logger;
}

/** The UTC day of an instant, `YYYY-MM-DD`; the last one is kept, as every request of a day asks for the same. */
let lastDay = { number: NaN, text: '' };
const utcDay = (ms: number) => {
  const number = Math.floor(ms / 86_400_000);
  if (number !== lastDay.number) lastDay = { number, text: new Date(ms).toISOString().slice(0, 10) };
  return lastDay.text;
};

interface RequestCount {
  day: string;
  userId: string | null;
  method: string;
  route: string;
  requests: number;
  bytesIn: number;
  bytesOut: number;
}

/**
 * Metering off the request path: usage events and per-route request counts are
 * kept in memory and written in multi-row statements every `flushIntervalMs`
 * or `maxBatch` events, whichever comes first. A failed write keeps its rows
 * for the next flush. `close()` (graceful shutdown) writes everything; a crash
 * loses at most the last interval.
 */
export function createUsageRecorder(db: Db, opts: RecorderOptions) {
  let events: UsageEvent[] = [];
  // day|userId|method|route → counts, so a million requests are a handful of upserts.
  let requests = new Map<string, RequestCount>();
  let flushing: Promise<boolean> | undefined;
  let closed = false;
  const timer = setInterval(() => void flush(), opts.flushIntervalMs);
  timer.unref();

  /** Writes what is pending; false when the events could not be written (they are kept). */
  async function write(): Promise<boolean> {
    const batch = events;
    const counts = [...requests.values()];
    let written = true;
    events = [];
    requests = new Map();
    let done = 0;
    try {
      for (; done < batch.length; done += opts.maxBatch) await insertEvents(db, batch.slice(done, done + opts.maxBatch));
    } catch (err) {
      // Only what was not written goes back: the chunks before the failure are in the table.
      requeue(batch.slice(done));
      opts.logger?.error({ err, events: batch.length }, 'usage events could not be written; retrying at the next flush');
      written = false;
    }
    if (!counts.length) return written;
    // Per route across users too, in the same transaction: a retry after a failure adds to neither twice.
    const byRoute = new Map<string, { day: string; method: string; route: string; requests: number; bytesIn: number; bytesOut: number }>();
    for (const c of counts) {
      const key = `${c.day}|${c.method}|${c.route}`;
      const found = byRoute.get(key);
      if (found) {
        found.requests += c.requests;
        found.bytesIn += c.bytesIn;
        found.bytesOut += c.bytesOut;
      } else byRoute.set(key, { day: c.day, method: c.method, route: c.route, requests: c.requests, bytesIn: c.bytesIn, bytesOut: c.bytesOut });
    }
    try {
      await db.transaction(async (tx) => {
        await tx
          .insert(apiRequestsDaily)
          .values(counts)
          .onConflictDoUpdate({
            target: [apiRequestsDaily.day, apiRequestsDaily.userId, apiRequestsDaily.method, apiRequestsDaily.route],
            set: {
              requests: sql`${apiRequestsDaily.requests} + excluded.requests`,
              bytesIn: sql`${apiRequestsDaily.bytesIn} + excluded.bytes_in`,
              bytesOut: sql`${apiRequestsDaily.bytesOut} + excluded.bytes_out`,
            },
          });
        await tx
          .insert(apiRequestsDailyRoutes)
          .values([...byRoute.values()])
          .onConflictDoUpdate({
            target: [apiRequestsDailyRoutes.day, apiRequestsDailyRoutes.method, apiRequestsDailyRoutes.route],
            set: {
              requests: sql`${apiRequestsDailyRoutes.requests} + excluded.requests`,
              bytesIn: sql`${apiRequestsDailyRoutes.bytesIn} + excluded.bytes_in`,
              bytesOut: sql`${apiRequestsDailyRoutes.bytesOut} + excluded.bytes_out`,
            },
          });
      });
    } catch (err) {
      for (const c of counts) addRequests(c);
      opts.logger?.error({ err }, 'API request counts could not be written; retrying at the next flush');
    }
    return written;
  }

  function requeue(batch: UsageEvent[]) {
    events = batch.concat(events);
    const excess = events.length - opts.maxPending;
    if (excess > 0) {
      events = events.slice(excess);
      opts.logger?.error({ dropped: excess }, 'usage events dropped: the database has been unreachable for too long');
    }
  }

  function addRequests(c: RequestCount) {
    const key = `${c.day}|${c.userId ?? ''}|${c.method}|${c.route}`;
    const found = requests.get(key);
    if (found) {
      found.requests += c.requests;
      found.bytesIn += c.bytesIn;
      found.bytesOut += c.bytesOut;
    } else requests.set(key, { ...c });
  }

  /** Writes what is pending; concurrent calls share one write, and a call during a write waits for it and then writes the rest. */
  async function flush(): Promise<void> {
    while (flushing) await flushing;
    if (!events.length && !requests.size) return;
    flushing = write().finally(() => (flushing = undefined));
    const written = await flushing;
    // Another full batch piled up during the write: it goes now, not at the next tick of the timer
    // (unless the database just failed: then the timer paces the retries).
    if (written && events.length >= opts.maxBatch && !flushing) void flush();
  }

  return {
    record(event: Omit<UsageEvent, 'occurredAt'> & { occurredAt?: Date }) {
      events.push({ ...event, occurredAt: event.occurredAt ?? new Date() });
      // After close (a call that ended during shutdown), write at once rather than wait for a timer that is gone.
      if ((events.length >= opts.maxBatch && !flushing) || closed) void flush();
      if (events.length > opts.maxPending) requeue([]);
    },

    countRequest(c: { userId: string | null; method: string; route: string; bytesIn: number; bytesOut: number; at?: Date }) {
      addRequests({ day: utcDay(c.at?.getTime() ?? Date.now()), userId: c.userId, method: c.method, route: c.route, requests: 1, bytesIn: c.bytesIn, bytesOut: c.bytesOut });
    },

    /** Events not yet written (for seeding budget counters and tests). */
    pending: (): readonly UsageEvent[] => events,

    flush,

    async close() {
      closed = true;
      clearInterval(timer);
      // Calls aborted by the shutdown record their outcome as they unwind, a tick or two later.
      await new Promise((resolve) => setImmediate(resolve));
      await flush();
    },
  };
}

export type UsageRecorder = ReturnType<typeof createUsageRecorder>;
