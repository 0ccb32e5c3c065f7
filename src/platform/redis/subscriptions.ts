import type { Redis } from 'ioredis';
import { callEach } from '../listeners.ts';
import { duplicateRedis } from './redis.ts';

/**
 * Channel listeners multiplexed over one lazily opened subscriber connection.
 * A listener that throws is reported to `onListenerError` and the others
 * still run: thrown inside ioredis' event emitter, it would be an uncaught
 * exception.
 */
export function createSubscriptions(redis: Redis, onListenerError: (err: unknown, channel: string) => void = (err) => process.emitWarning(err instanceof Error ? err : String(err))) {
  let subscriber: Redis | undefined;
  const channels = new Map<string, { listeners: Set<(message: string) => void>; ready: Promise<unknown> }>();

  const connection = () => {
    if (!subscriber) {
      subscriber = duplicateRedis(redis);
      subscriber.on('message', (ch: string, message: string) => {
        callEach(channels.get(ch)?.listeners, message, (err) => onListenerError(err, ch));
      });
    }
    return subscriber;
  };

  return {
    async add(ch: string, listener: (message: string) => void): Promise<() => Promise<void>> {
      const sub = connection();
      let entry = channels.get(ch);
      // Commands on one connection run in order, so a later unsubscribe never overtakes this subscribe.
      if (!entry) channels.set(ch, (entry = { listeners: new Set(), ready: sub.subscribe(ch) }));
      const { listeners } = entry;
      listeners.add(listener);
      try {
        await entry.ready;
      } catch (err) {
        // Not subscribed after all: the next listener must try again.
        listeners.delete(listener);
        if (channels.get(ch)?.listeners === listeners) channels.delete(ch);
        throw err;
      }
      let removed = false;
      return async () => {
        if (removed) return;
        removed = true;
        listeners.delete(listener);
        if (listeners.size === 0 && channels.get(ch)?.listeners === listeners) {
          channels.delete(ch);
          await sub.unsubscribe(ch).catch(() => {});
        }
      };
    },
    async close() {
      channels.clear();
      if (subscriber) await subscriber.quit().catch(() => subscriber?.disconnect());
      subscriber = undefined;
    },
  };
}
