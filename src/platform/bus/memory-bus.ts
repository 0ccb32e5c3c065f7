import { uuidv7 } from 'uuidv7';
import type { Logger } from '../observability/logger.ts';
import { defaultBusOptions, errorText, retryDelay, type BusOptions, type DeadLetter, type EventBus, type Handler } from './bus.ts';
import type { BusEvent, EventType } from './events.ts';

interface Consumer {
  group: string;
  types: Set<string>;
  handler: Handler<EventType>;
  /** Deliveries run one after another per consumer, in publish order (as a Redis consumer reads them). */
  tail: Promise<void>;
  closed: boolean;
}

type Stored = Omit<BusEvent, 'delivery'>;

const DEAD_LETTERS_KEPT = 1_000;

/**
 * One process: events are queued in memory and handled asynchronously, after
 * publish returns. Nothing survives a restart; retries and dead letters work
 * as on Redis.
 */
export function memoryBus(logger: Logger, options: Partial<BusOptions> = {}): EventBus & { idle(): Promise<void> } {
  const opts = { ...defaultBusOptions, ...options };
  const groups = new Map<string, { consumers: Consumer[]; next: number }>();
  const dead: DeadLetter[] = [];
  const timers = new Set<NodeJS.Timeout>();
  let pending = 0;
  let waiters: Array<() => void> = [];

  const settle = () => {
    if (pending === 0 && timers.size === 0) for (const w of waiters.splice(0)) w();
  };

  /** The group's next consumer for this type, round robin; undefined once none is left. */
  function pick(group: string, type: string): Consumer | undefined {
    const g = groups.get(group);
    if (!g) return undefined;
    const candidates = g.consumers.filter((c) => !c.closed && c.types.has(type));
    if (!candidates.length) return undefined;
    return candidates[g.next++ % candidates.length];
  }

  function deliver(c: Consumer, event: Stored, delivery: number) {
    pending++;
    c.tail = c.tail.then(async () => {
      try {
        await c.handler({ ...event, delivery } as BusEvent as never);
      } catch (err) {
        fail(c.group, event, delivery, err);
      } finally {
        pending--;
        settle();
      }
    });
  }

  function fail(group: string, event: Stored, delivery: number, err: unknown) {
    if (delivery >= opts.maxDeliveries) {
      const letter: DeadLetter = { id: event.id, type: event.type, group, payload: event.payload, occurredAt: event.occurredAt, deliveries: delivery, error: errorText(err), failedAt: new Date().toISOString() };
      dead.unshift(letter);
      dead.length = Math.min(dead.length, DEAD_LETTERS_KEPT);
      logger.error({ err, eventId: event.id, type: event.type, group, deliveries: delivery }, 'event dead-lettered: its handler kept failing');
      return;
    }
    logger.warn({ err, eventId: event.id, type: event.type, group, delivery }, 'event handler failed; will retry');
    const timer = setTimeout(() => {
      timers.delete(timer);
      const next = pick(group, event.type);
      if (next) deliver(next, event, delivery + 1);
      else logger.warn({ eventId: event.id, group }, 'event dropped: its group has no consumer left in this process');
      settle();
    }, retryDelay(opts, delivery));
    timers.add(timer);
  }

  return {
    async publish(type, payload) {
      // Handlers get a copy, as from Redis: what one does to it no other sees.
      const event: Stored = { id: uuidv7(), type, payload: JSON.parse(JSON.stringify(payload)), occurredAt: new Date().toISOString() };
      for (const group of groups.keys()) {
        const c = pick(group, type);
        if (c) deliver(c, event, 1);
      }
      return event.id;
    },
    async subscribe(group, types, handler) {
      let g = groups.get(group);
      if (!g) groups.set(group, (g = { consumers: [], next: 0 }));
      const c: Consumer = { group, types: new Set(types), handler: handler as Handler<EventType>, tail: Promise.resolve(), closed: false };
      g.consumers.push(c);
      return {
        async close() {
          c.closed = true;
          const list = groups.get(group)?.consumers;
          if (list) list.splice(list.indexOf(c), 1);
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
      for (const g of groups.values()) for (const c of g.consumers) c.closed = true;
      if (timers.size) logger.warn({ retries: timers.size }, 'bus closed with event retries still scheduled; they are dropped');
      for (const t of timers) clearTimeout(t);
      timers.clear();
      await Promise.all([...groups.values()].flatMap((g) => g.consumers.map((c) => c.tail)));
      groups.clear();
      settle();
      waiters = [];
    },
  };
}
