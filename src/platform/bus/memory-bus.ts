import { uuidv7 } from 'uuidv7';
import type { Logger } from '../observability/logger.ts';
import { defaultBusOptions, errorText, retryDelay, type BatchHandler, type BusOptions, type DeadLetter, type EventBus, type Handler } from './bus.ts';
import type { BusEvent, EventType } from './events.ts';

interface Consumer {
  types: Set<string>;
  handler: Handler<EventType>;
  batch?: BatchHandler<EventType>;
  /** Deliveries run one after another per consumer, in publish order (as a Redis consumer reads them): those waiting their turn. */
  queue: Array<{ event: Stored; delivery: number }>;
  /** The run handling the queue, if one is under way. */
  tail: Promise<void>;
  draining: boolean;
  closed: boolean;
}

/** Events handed to a batch handler at most, as a Redis consumer reads at most 64 at once. */
const BATCH = 64;

interface Group {
  consumers: Consumer[];
  next: number;
  /** Every type a consumer of the group ever asked for: the group keeps receiving those (Redis: the group exists on their streams). */
  types: Set<string>;
  /** Events waiting for a consumer, as unread and unclaimed entries wait in a Redis group. */
  backlog: Array<{ event: Stored; delivery: number }>;
}

/** The payload travels as JSON, so each delivery gets its own copy, as from Redis. */
type Stored = Omit<BusEvent, 'delivery' | 'payload'> & { data: string };

const DEAD_LETTERS_KEPT = 1_000;

/**
 * One process: events are queued in memory and handled asynchronously, after
 * publish returns. Nothing survives a restart; retries and dead letters work
 * as on Redis, and an event whose group has no consumer right now waits for
 * the next one to subscribe.
 */
export function memoryBus(logger: Logger, options: Partial<BusOptions> = {}): EventBus & { idle(): Promise<void> } {
  const opts = { ...defaultBusOptions, ...options };
  const groups = new Map<string, Group>();
  const dead: DeadLetter[] = [];
  const timers = new Set<NodeJS.Timeout>();
  let pending = 0;
  let closed = false;
  let waiters: Array<() => void> = [];

  const settle = () => {
    if (pending === 0 && timers.size === 0) for (const w of waiters.splice(0)) w();
  };

  /** Hands an event to the group's next consumer for its type (round robin), or keeps it until one subscribes. */
  function route(name: string, event: Stored, delivery: number) {
    const g = groups.get(name);
    if (!g || !g.types.has(event.type)) return;
    const candidates = g.consumers.filter((c) => !c.closed && c.types.has(event.type));
    if (candidates.length) deliver(name, candidates[g.next++ % candidates.length]!, event, delivery);
    else g.backlog.push({ event, delivery });
  }

  function deliver(group: string, c: Consumer, event: Stored, delivery: number) {
    pending++;
    c.queue.push({ event, delivery });
    if (!c.draining) c.tail = drain(group, c);
  }

  const parse = ({ event: { data, ...rest }, delivery }: { event: Stored; delivery: number }) => ({ ...rest, payload: JSON.parse(data), delivery }) as BusEvent as never;

  /** Runs what waits for this consumer, in order: several at once through its batch handler when it has one, else one by one. */
  async function drain(group: string, c: Consumer) {
    c.draining = true;
    // Handled after the publish that queued it returned, as on Redis.
    await Promise.resolve();
    try {
      while (c.queue.length) {
        const take = c.queue.splice(0, c.batch && !c.closed ? BATCH : 1);
        if (take.length > 1 && (await runBatch(group, c, take))) continue;
        for (const item of take) await runOne(group, c, item);
      }
    } finally {
      c.draining = false;
    }
  }

  async function runBatch(group: string, c: Consumer, take: Array<{ event: Stored; delivery: number }>): Promise<boolean> {
    try {
      await c.batch!(take.map(parse));
    } catch (err) {
      logger.warn({ err, group, events: take.length }, 'event batch handler failed; handling each event alone');
      return false;
    }
    pending -= take.length;
    settle();
    return true;
  }

  async function runOne(group: string, c: Consumer, item: { event: Stored; delivery: number }) {
    try {
      // Closed while this waited its turn: not started, so it goes to another consumer, like an unacked Redis entry.
      if (c.closed) return route(group, item.event, item.delivery);
      await c.handler(parse(item));
    } catch (err) {
      fail(group, item.event, item.delivery, err);
    } finally {
      pending--;
      settle();
    }
  }

  function fail(group: string, event: Stored, delivery: number, err: unknown) {
    if (delivery >= opts.maxDeliveries) {
      const letter: DeadLetter = { id: event.id, type: event.type, group, payload: JSON.parse(event.data), occurredAt: event.occurredAt, deliveries: delivery, error: errorText(err), failedAt: new Date().toISOString() };
      dead.unshift(letter);
      dead.length = Math.min(dead.length, DEAD_LETTERS_KEPT);
      logger.error({ err, eventId: event.id, type: event.type, group, deliveries: delivery }, 'event dead-lettered: its handler kept failing');
      return;
    }
    if (closed) return logger.warn({ err, eventId: event.id, type: event.type, group, delivery }, 'event handler failed as the bus closed; the event is dropped');
    logger.warn({ err, eventId: event.id, type: event.type, group, delivery }, 'event handler failed; will retry');
    const timer = setTimeout(() => {
      timers.delete(timer);
      route(group, event, delivery + 1);
      settle();
    }, retryDelay(opts, delivery));
    timers.add(timer);
  }

  return {
    async publish(type, payload) {
      const event: Stored = { id: uuidv7(), type, data: JSON.stringify(payload), occurredAt: new Date().toISOString() };
      for (const group of groups.keys()) route(group, event, 1);
      return event.id;
    },
    async subscribe(group, types, handler, options = {}) {
      let g = groups.get(group);
      if (!g) groups.set(group, (g = { consumers: [], next: 0, types: new Set(), backlog: [] }));
      for (const type of types) g.types.add(type);
      const c: Consumer = { types: new Set(types), handler: handler as Handler<EventType>, batch: options.batch as BatchHandler<EventType> | undefined, queue: [], tail: Promise.resolve(), draining: false, closed: false };
      g.consumers.push(c);
      for (const { event, delivery } of g.backlog.splice(0)) route(group, event, delivery);
      return {
        async close() {
          c.closed = true;
          const list = groups.get(group)?.consumers;
          if (list?.includes(c)) list.splice(list.indexOf(c), 1);
          await c.tail;
        },
      };
    },
    async deadLetters(limit = 100) {
      return dead.slice(0, limit);
    },
    /** Resolves once every queued delivery and scheduled retry has run (tests). */
    idle() {
      if (pending === 0 && timers.size === 0) return Promise.resolve();
      return new Promise<void>((resolve) => waiters.push(resolve));
    },
    async close() {
      closed = true;
      for (const g of groups.values()) for (const c of g.consumers) c.closed = true;
      if (timers.size) logger.warn({ retries: timers.size }, 'bus closed with event retries still scheduled; they are dropped');
      for (const t of timers) clearTimeout(t);
      timers.clear();
      await Promise.all([...groups.values()].flatMap((g) => g.consumers.map((c) => c.tail)));
      const waiting = [...groups.values()].reduce((n, g) => n + g.backlog.length, 0);
      if (waiting) logger.warn({ events: waiting }, 'bus closed with events waiting for a consumer; they are dropped');
      groups.clear();
      settle();
      waiters = [];
    },
  };
}
