import { AppError } from '../../errors.ts';
import type { Logger } from '../observability/logger.ts';
import type { AnyBusEvent, DomainEvents, EventType } from './events.ts';

export type Handler<T extends EventType> = (event: AnyBusEvent<T>) => Promise<void> | void;

/**
 * Several events at once, in the order they were published (a subscriber
 * that can handle them in one go: one query, one transaction). Should it
 * throw, each of them is handed to the one-event handler instead, with the
 * usual retries: so it must be idempotent as the handler is.
 */
export type BatchHandler<T extends EventType> = (events: AnyBusEvent<T>[]) => Promise<void>;

export interface SubscribeOptions<T extends EventType> {
  /** Takes the events that arrived together (up to 64) when there are several. */
  batch?: BatchHandler<T>;
}

export interface Subscription {
  /** Stops taking new events and waits for the handler running now; what is not acked is redelivered later. */
  close(): Promise<void>;
}

/** An event whose handler kept failing in one consumer group, with the last error. */
export interface DeadLetter {
  id: string;
  type: string;
  group: string;
  payload: unknown;
  occurredAt: string;
  deliveries: number;
  error: string;
  failedAt: string;
}

/**
 * Reliable domain events: at least once to every consumer group that
 * subscribed to the type before the event was published, once publish has
 * resolved. Within a group, each event goes to one of its consumers; a
 * handler that throws gets it again (after a backoff, up to `maxDeliveries`
 * in all), then the event is dead-lettered with the error. Handlers must be
 * idempotent: a redelivery, or a crash between the handler and its ack,
 * repeats an event; de-duplicate by `event.id`. Every consumer of a group
 * subscribes to the same types (they are instances of one handler).
 *
 * Not for cache invalidation (that is Broadcast: at most once, every process).
 */
export interface EventBus {
  /** Resolves with the event's id once the event is stored (Redis) or queued (in process). */
  publish<T extends EventType>(type: T, payload: DomainEvents[T]): Promise<string>;
  /** Resolves once the group exists, so every event published after this is delivered to it. */
  subscribe<T extends EventType>(group: string, types: readonly T[], handler: Handler<T>, options?: SubscribeOptions<T>): Promise<Subscription>;
  /** The most recent dead letters, newest first. */
  deadLetters(limit?: number): Promise<DeadLetter[]>;
  close(): Promise<void>;
}

export interface BusOptions {
  /** Deliveries to one group before the event is dead-lettered (the first one included). */
  maxDeliveries: number;
  /** Backoff before the first redelivery after a failure; doubles each time, up to claimIdleMs / 2. */
  retryDelayMs: number;
  /**
   * A consumer renews its claim on the events it holds well within this; an
   * event unrenewed and unacked this long belongs to a consumer presumed dead,
   * and another consumer of the group claims it (Redis).
   */
  claimIdleMs: number;
  /** Approximate number of events kept per stream (XADD MAXLEN ~) (Redis). */
  maxLen: number;
}

export const defaultBusOptions: BusOptions = { maxDeliveries: 5, retryDelayMs: 1_000, claimIdleMs: 30_000, maxLen: 100_000 };

export function retryDelay(opts: BusOptions, delivery: number): number {
  return Math.min(opts.retryDelayMs * 2 ** (delivery - 1), Math.max(opts.claimIdleMs / 2, opts.retryDelayMs));
}

export const errorText = (err: unknown): string => (err instanceof Error ? err.message : String(err)).slice(0, 2_000);

/** Publishes a domain event without waiting for, or failing with, the bus. */
export type Announce = <T extends EventType>(type: T, payload: DomainEvents[T]) => void;

export interface Announcer extends Announce {
  /** Publishes what is held, if the bus takes it now; what it does not take is lost, and logged. */
  close(): Promise<void>;
}

export interface AnnouncerOptions {
  /** Events held while the bus is unreachable; past this the oldest are dropped (and counted in the log). */
  maxHeld: number;
  /** How often held events are tried again. */
  retryMs: number;
}

const isUnavailable = (err: unknown) => err instanceof AppError && err.code === 'dependency_unavailable';

/**
 * A publisher for code that must not wait for, or fail with, the bus (chat
 * generation): publishes in the background. An event the bus cannot take
 * because it is unreachable (Redis down) is held in this process and
 * published once the bus takes events again, as are those announced after
 * it meanwhile, so that events from one process still reach the bus in the
 * order they were announced. What a process holds is lost if it stops before
 * then; any other failure loses the event, and is logged.
 */
export function announcer(bus: EventBus, logger: Logger, opts: AnnouncerOptions = { maxHeld: 10_000, retryMs: 1_000 }): Announcer {
  const held: Array<{ type: EventType; payload: unknown }> = [];
  let dropped = 0;
  let timer: NodeJS.Timeout | undefined;
  let draining: Promise<void> | undefined;
  let closing = false;
  const lost = (err: unknown, type: EventType) => logger.error({ err, type }, 'event could not be published');

  function hold(type: EventType, payload: unknown) {
    if (held.length >= opts.maxHeld) {
      held.shift();
      dropped++;
    }
    held.push({ type, payload });
    if (held.length === 1 && !draining) logger.warn('the event bus is unreachable: events are held in this process until it is back');
    retryLater();
  }

  function retryLater() {
    if (timer || draining || closing) return;
    timer = setTimeout(() => {
      timer = undefined;
      draining = drain().then(() => {
        draining = undefined;
        if (held.length) retryLater();
      });
    }, opts.retryMs);
    timer.unref();
  }

  /** Publishes the held events in order; stops at the first the bus cannot take, to try again later. */
  async function drain(): Promise<boolean> {
    const count = held.length;
    while (held.length) {
      const e = held[0]!;
      try {
        await bus.publish(e.type as never, e.payload as never);
      } catch (err) {
        if (isUnavailable(err)) return false;
        lost(err, e.type);
      }
      held.shift();
    }
    logger.info({ published: count, dropped }, 'the event bus is reachable again: held events published');
    dropped = 0;
    return true;
  }

  const announce = ((type, payload) => {
    // Behind the held ones, to keep the order.
    if (held.length) return hold(type, payload);
    bus.publish(type, payload).catch((err) => (isUnavailable(err) ? hold(type, payload) : lost(err, type)));
  }) as Announcer;
  announce.close = async () => {
    closing = true;
    clearTimeout(timer);
    await draining;
    if (held.length && !(await drain())) logger.error({ lost: held.length + dropped }, 'events held for the event bus are lost: it was unreachable when this process stopped');
    held.length = 0;
  };
  return announce;
}
