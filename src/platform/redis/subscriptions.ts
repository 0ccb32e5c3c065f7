import type { Redis } from 'ioredis';

/** Channel listeners multiplexed over one lazily opened subscriber connection. */
export function createSubscriptions(redis: Redis) {
  let subscriber: Redis | undefined;
  const channels = new Map<string, { listeners: Set<(message: string) => void>; ready: Promise<unknown> }>();

  const connection = () => {
    if (!subscriber) {
      subscriber = redis.duplicate();
      subscriber.on('message', (ch: string, message: string) => {
        for (const l of channels.get(ch)?.listeners ?? []) l(message);
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
