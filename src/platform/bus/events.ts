/**
 * The domain events that travel on the bus: a map from type to payload. A
 * module adds its own by augmenting the interface:
 *
 *   declare module '../../platform/bus/events.ts' {
 *     interface DomainEvents { 'invoice.paid': { invoiceId: string; userId: string } }
 *   }
 *
 * Payloads are JSON: plain objects, strings, numbers, booleans, null, arrays.
 * Every event names the user it concerns, so consumers can route it to that
 * user's topics without a lookup.
 */
export interface DomainEvents {
  /** A user message was stored and an answer placeholder created for it (also on regenerate). */
  'message.created': { userId: string; conversationId: string; userMessageId: string; assistantMessageId: string; model: string | null };
  /** The first tokens of an answer arrived from the provider. */
  'message.stream.started': { userId: string; conversationId: string; messageId: string; provider: string | null; model: string | null };
  /** An answer ended: its final status, usage and error, never its text (that is on the message). */
  'message.stream.finished': {
    userId: string;
    conversationId: string;
    messageId: string;
    status: 'complete' | 'failed' | 'cancelled';
    provider: string | null;
    model: string | null;
    finishReason: string | null;
    usage: { inputTokens: number | null; outputTokens: number | null; cachedTokens: number | null; costMicros: number | null };
    latencyMs: number | null;
    error: { code: string; message: string } | null;
  };
  /** A background job moved: its state and progress (0–100 or a job-defined object). */
  'job.progress': { userId: string; jobId: string; queue: string; state: string; progress: unknown };
  /** A user's profile or settings changed; `fields` names what changed. */
  'user.updated': { userId: string; fields: string[] };
}

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
