import { EventEmitter } from 'node:events';
import { StreamEnded, type StreamBuffer, type StreamBufferOptions, type StreamEntry } from './stream-buffer.ts';

interface Log {
  events: unknown[];
  ended: boolean;
  /** Readers waiting for the next append or the end. */
  wake: Set<() => void>;
  expiry: NodeJS.Timeout;
}

/** The stream buffer of a single process: logs in a Map, dropped after their retention time. */
export function memoryStreamBuffer(opts: StreamBufferOptions): StreamBuffer {
  const logs = new Map<string, Log>();
  const newLog = (): Log => ({ events: [], ended: false, wake: new Set(), expiry: undefined as unknown as NodeJS.Timeout });
  const signals = new EventEmitter();
  signals.setMaxListeners(0);

  const expireIn = (id: string, log: Log, seconds: number) => {
    clearTimeout(log.expiry);
    log.expiry = setTimeout(() => {
      logs.delete(id);
      notify(log);
    }, seconds * 1000).unref();
  };
  const notify = (log: Log) => {
    for (const wake of log.wake) wake();
    log.wake.clear();
  };

  return {
    async append(id, event) {
      let log = logs.get(id);
      if (!log) {
        log = newLog();
        logs.set(id, log);
        expireIn(id, log, opts.maxLiveSeconds);
      }
      if (log.ended) throw new StreamEnded(id);
      // A deep copy, so a reader never sees the writer's later changes to the object (as with Redis).
      log.events.push(structuredClone(event));
      notify(log);
      return log.events.length - 1;
    },

    async end(id) {
      const log = logs.get(id) ?? newLog();
      logs.set(id, log);
      if (log.ended) return;
      log.ended = true;
      expireIn(id, log, opts.retentionSeconds);
      notify(log);
    },

    async *read<E>(id: string, fromOffset = 0, o: { signal?: AbortSignal } = {}): AsyncGenerator<StreamEntry<E>> {
      let next = Math.max(0, fromOffset);
      while (!o.signal?.aborted) {
        const log = logs.get(id);
        if (!log) return;
        while (next < log.events.length) {
          yield { offset: next, event: structuredClone(log.events[next]) as E };
          next++;
          if (o.signal?.aborted) return;
        }
        if (log.ended) return;
        await new Promise<void>((resolve) => {
          const wake = () => {
            o.signal?.removeEventListener('abort', wake);
            log.wake.delete(wake);
            resolve();
          };
          log.wake.add(wake);
          o.signal?.addEventListener('abort', wake, { once: true });
        });
      }
    },

    async state(id) {
      const log = logs.get(id);
      return !log ? 'missing' : log.ended ? 'ended' : 'live';
    },

    async signal(id, message) {
      signals.emit(id, message);
    },

    async onSignal(id, listener) {
      signals.on(id, listener);
      return async () => void signals.off(id, listener);
    },

    assertReachable() {},

    async close() {
      for (const log of logs.values()) {
        clearTimeout(log.expiry);
        log.ended = true;
        notify(log);
      }
      logs.clear();
      signals.removeAllListeners();
    },
  };
}
