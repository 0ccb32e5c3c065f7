import type { Redis } from 'ioredis';
import type { Logger } from '../observability/logger.ts';
import { createSubscriptions } from '../redis/subscriptions.ts';
import { callEach } from '../listeners.ts';

/**
 * Fire-and-forget notices to every Parley process, this one included: "forget
 * what you cached about user X". Delivery is at most once (Redis pub/sub drops
 * what arrives during a reconnect), so it only ever shortens what a TTL already
 * bounds; work that must happen goes on the job queue instead.
 */
export interface Broadcast {
  publish(topic: string, message: string): Promise<void>;
  /** Listeners run synchronously on delivery; one that throws is logged and the rest still run. */
  on(topic: string, listener: (message: string) => void): void;
  close(): Promise<void>;
}

function listenerSet(logger?: Logger) {
  const topics = new Map<string, Set<(message: string) => void>>();
  return {
    on(topic: string, listener: (message: string) => void) {
      let set = topics.get(topic);
      if (!set) topics.set(topic, (set = new Set()));
      set.add(listener);
    },
    deliver(topic: string, message: string) {
      callEach(topics.get(topic), message, (err) => logger?.error({ err, topic }, 'broadcast listener failed'));
    },
  };
}

/** One process: delivery is a function call. */
export function memoryBroadcast(logger?: Logger): Broadcast {
  const listeners = listenerSet(logger);
  return {
    async publish(topic, message) {
      listeners.deliver(topic, message);
    },
    on: listeners.on,
    async close() {},
  };
}

/** Many processes: one Redis channel per deployment prefix, subscribed before this resolves so no notice published after it is missed. */
export async function redisBroadcast(redis: Redis, prefix: string, logger?: Logger): Promise<Broadcast> {
  const channel = `${prefix}broadcast`;
  const listeners = listenerSet(logger);
  const subscriptions = createSubscriptions(redis);
  await subscriptions.add(channel, (raw) => {
    let notice: [string, string];
    try {
      notice = JSON.parse(raw);
    } catch {
      return logger?.warn({ channel }, 'malformed broadcast notice ignored');
    }
    listeners.deliver(notice[0], notice[1]);
  });
  return {
    async publish(topic, message) {
      await redis.publish(channel, JSON.stringify([topic, message]));
    },
    on: listeners.on,
    close: () => subscriptions.close(),
  };
}
