import type { Redis } from 'ioredis';
import type { Logger } from '../observability/logger.ts';
import { createSubscriptions } from '../redis/subscriptions.ts';
import { callEach } from '../listeners.ts';

/**
 * Messages by topic to every process listening to that topic, this one
 * included: how a real-time event reaches the sockets, wherever they are
 * connected. At most once (a process reconnecting to Redis misses what is
 * published meanwhile); what must not be lost goes on the EventBus first.
 */
export interface Fanout {
  publish(topic: string, message: string): Promise<void>;
  /**
   * Resolves once listening, so anything published afterwards arrives. Returns the way to stop.
   * Listeners run synchronously on delivery; one that throws is logged and the others still run.
   */
  subscribe(topic: string, listener: (message: string) => void): Promise<() => Promise<void>>;
  close(): Promise<void>;
}

/** One process: a publish calls the topic's listeners synchronously, in order. */
export function memoryFanout(logger?: Logger): Fanout {
  const topics = new Map<string, Set<(message: string) => void>>();
  return {
    async publish(topic, message) {
      callEach(topics.get(topic), message, (err) => logger?.error({ err, topic }, 'fan-out listener failed'));
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
    async close() {
      topics.clear();
    },
  };
}

/** Many processes: a Redis channel per topic, all of a process's topics on one subscriber connection. */
export function redisFanout(redis: Redis, prefix: string, logger?: Logger): Fanout {
  const channel = (topic: string) => `${prefix}fanout:${topic}`;
  const subscriptions = createSubscriptions(redis, (err, ch) => logger?.error({ err, topic: ch.slice(channel('').length) }, 'fan-out listener failed'));
  return {
    async publish(topic, message) {
      await redis.publish(channel(topic), message);
    },
    subscribe: (topic, listener) => subscriptions.add(channel(topic), listener),
    close: () => subscriptions.close(),
  };
}
