import type { Redis } from 'ioredis';
import { createSubscriptions } from '../redis/subscriptions.ts';

/**
 * Messages by topic to every process listening to that topic, this one
 * included: how a real-time event reaches the sockets, wherever they are
 * connected. At most once (a process reconnecting to Redis misses what is
 * published meanwhile); what must not be lost goes on the EventBus first.
 */
export interface Fanout {
  publish(topic: string, message: string): Promise<void>;
  /** Resolves once listening, so anything published afterwards arrives. Returns the way to stop. */
  subscribe(topic: string, listener: (message: string) => void): Promise<() => Promise<void>>;
  close(): Promise<void>;
}

/** One process: a publish calls the topic's listeners synchronously, in order. */
export function memoryFanout(): Fanout {
  const topics = new Map<string, Set<(message: string) => void>>();
  return {
    async publish(topic, message) {
      for (const listener of topics.get(topic) ?? []) listener(message);
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
export function redisFanout(redis: Redis, prefix: string): Fanout {
  const subscriptions = createSubscriptions(redis);
  const channel = (topic: string) => `${prefix}fanout:${topic}`;
  return {
    async publish(topic, message) {
      await redis.publish(channel(topic), message);
    },
    subscribe: (topic, listener) => subscriptions.add(channel(topic), listener),
    close: () => subscriptions.close(),
  };
}
