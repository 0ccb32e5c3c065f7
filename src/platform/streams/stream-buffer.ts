/**
 * An append-only event log per stream (one generation's output) with a live
 * tail, so any instance can replay it from an offset and follow it to its end.
 * In-process on one machine, Redis Streams across many.
 */
export interface StreamEntry<E = unknown> {
  /** 0-based position in the stream; what SSE sends as `id:` and `Last-Event-ID` resumes from. */
  offset: number;
  event: E;
}

export interface StreamBuffer {
  /** Adds an event (any JSON value) and returns its offset. Appending to an ended stream throws. */
  append(streamId: string, event: unknown): Promise<number>;
  /** Marks the stream finished; readers stop after the last event, and the log expires after the retention time. */
  end(streamId: string): Promise<void>;
  /**
   * Replays the stored events from `fromOffset` and then follows new ones until
   * the stream ends or `signal` aborts. A stream that does not exist (never
   * started or already expired) yields nothing.
   */
  read<E = unknown>(streamId: string, fromOffset?: number, opts?: { signal?: AbortSignal }): AsyncIterable<StreamEntry<E>>;
  state(streamId: string): Promise<'missing' | 'live' | 'ended'>;
  /** Sends a control message (e.g. "cancel") to whoever listens on this stream, on any instance. Best effort. */
  signal(streamId: string, message: string): Promise<void>;
  /** Listens for control messages; resolves once listening, with the function that stops it. */
  onSignal(streamId: string, listener: (message: string) => void): Promise<() => Promise<void>>;
  /**
   * Throws a 503 `dependency_unavailable` error when the buffer's store cannot
   * be reached now, so a caller can refuse before it writes anything of its
   * own. Every method throws that error too, should the store be lost meanwhile.
   */
  assertReachable(): void;
  close(): Promise<void>;
}

export interface StreamBufferOptions {
  /** How long an ended stream stays readable. */
  retentionSeconds: number;
  /** Upper bound on the life of a stream that is never ended (its writer died). */
  maxLiveSeconds: number;
}

export class StreamEnded extends Error {
  constructor(streamId: string) {
    super(`stream ${streamId} has ended`);
  }
}
