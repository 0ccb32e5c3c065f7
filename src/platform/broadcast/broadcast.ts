import type { Redis } from 'ioredis';
import type { Logger } from '../observability/logger.ts';
import { createSubscriptions } from '../redis/subscriptions.ts';
import { callEach } from '../listeners.ts';

/**
 * Messages by topic to every process listening to that topic, this one
 * included: "forget what you cached about user X", and how a real-time event
 * reaches the sockets, wherever they are connected. At most once (a process
 * reconnecting to Redis misses what is published meanwhile), so a cache
 * notice only ever shortens what a TTL already bounds; what must not be lost
 * goes on the EventBus or the job queue instead.
 */
export interface Broadcast {
  publish(topic: string, message: string): Promise<void>;
  /**
   * Resolves once listening, so anything published afterwards arrives. Returns the way to stop.
   * Listeners run synchronously on delivery; one that throws is logged and the others still run.
   */
  subscribe(topic: string, listener: (message: string) => void): Promise<() => Promise<void>>;
  /** Resolves once every subscribe made so far is listening (caches that subscribed while being built). */
  settled(): Promise<void>;
  close(): Promise<void>;
}

/** One process: a publish calls the topic's listeners synchronously, in order. */
export function memoryBroadcast(logger?: Logger): Broadcast {
  const topics = new Map<string, Set<(message: string) => void>>();
  return {
    async publish(topic, message) {
      callEach(topics.get(topic), message, (err) => logger?.error({ err, topic }, 'broadcast listener failed'));
    },
    async subscribe(topic, listener) {
      let set = topics.get(topic);
      if (!set) topics.set(topic, (set = new Set()));
      set.add(listener);
      return async () => {
        set.delete(listener);
        if (!set.size && topics.get(topic) === set) topics.delete(topic);
      };
    },
    async settled() {},
    async close() {
      topics.clear();
    },
  };
}

/** Many processes: a Redis channel per topic, all of a process's topics on one subscriber connection. */
export function redisBroadcast(redis: Redis, prefix: string, logger?: Logger): Broadcast {
  const channel = (topic: string) => `${prefix}broadcast:${topic}`;
  const subscriptions = createSubscriptions(redis, (err, ch) => logger?.error({ err, topic: ch.slice(channel('').length) }, 'broadcast listener failed'));
  const pending = new Set<Promise<unknown>>();
  return {
    async publish(topic, message) {
      await redis.publish(channel(topic), message);
    },
    subscribe(topic, listener) {
      const listening = subscriptions.add(channel(topic), listener);
      pending.add(listening);
      void listening.then(() => pending.delete(listening), () => {});
      return listening;
    },
    async settled() {
      await Promise.all(pending);
    },
    close: () => subscriptions.close(),
  };
}
