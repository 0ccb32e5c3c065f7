/**
 * The domain events that travel on the bus: a map from type to payload. Each
 * module declares the events it emits in its own index.ts, by augmenting the
 * interface (chat's `message.*`, jobs' `job.progress`, users' `user.updated`):
 *
 *   declare module '../../platform/bus/events.ts' {
 *     interface DomainEvents { 'invoice.paid': { invoiceId: string; userId: string } }
 *   }
 *
 * Payloads are JSON: plain objects, strings, numbers, booleans, null, arrays.
 * Every event names the user it concerns, so consumers can route it to that
 * user's topics without a lookup.
 */
export interface DomainEvents {}

export type EventType = keyof DomainEvents & string;

/** One event as handlers receive it. `id` is unique (UUIDv7, time-ordered): handlers de-duplicate by it. */
export interface BusEvent<T extends EventType = EventType> {
  id: string;
  type: T;
  payload: DomainEvents[T];
  /** ISO-8601, when it was published. */
  occurredAt: string;
  /** 1 on the first delivery to this consumer group, higher on redeliveries. */
  delivery: number;
}

/** The union of events of the given types, so a handler can switch on `type`. */
export type AnyBusEvent<T extends EventType = EventType> = { [K in T]: BusEvent<K> }[T];
