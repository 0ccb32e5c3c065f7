import type { Logger } from '../observability/logger.ts';
import type { Broadcast } from './broadcast.ts';

export interface BroadcastCache<V> {
  /** The value for `key`: kept, or loaded (one load per key at a time: concurrent gets share it). */
  get(key: string): Promise<V>;
  /**
   * Drops `key` here and, over the broadcast, in every other process. Call it after the change has committed.
   * A load that began before it is neither stored nor shared any more, so it cannot bring the old value back.
   */
  forget(key: string): Promise<void>;
}

/**
 * What a hot path reads per user and rarely changes (a user's preferences, whether they have a browser to push
 * to), kept in process so the path makes no database round trip for it. An entry lives `ttlMs` (less when
 * `expiresAt` says the value itself lapses sooner); `forget` after a change drops it in every process at once.
 * The broadcast is at most once: a process that missed a notice (its Redis connection was down) trusts its
 * copy until the TTL ends, which bounds how stale a value can be. A load that finds nothing (`undefined`) is
 * not kept: the next get looks again.
 */
export function createBroadcastCache<V>(opts: {
  broadcast: Broadcast;
  /** The broadcast topic of this cache's notices: one per cache. */
  topic: string;
  load: (key: string) => Promise<V>;
  /** How long a copy is trusted should a change's notice be missed: 30 s, as for API keys. */
  ttlMs?: number;
  /** Keys kept at most (the oldest goes first): 10,000. */
  maxEntries?: number;
  /** When the value stops being true by itself (epoch ms), if it does. */
  expiresAt?: (value: V) => number | undefined;
  logger?: Logger;
}): BroadcastCache<V> {
  const ttlMs = opts.ttlMs ?? 30_000;
  const maxEntries = opts.maxEntries ?? 10_000;
  const entries = new Map<string, { value: V; until: number }>();
  const loads = new Map<string, { promise: Promise<V>; stale: boolean }>();

  const forgetLocally = (key: string) => {
    entries.delete(key);
    const load = loads.get(key);
    if (load) {
      load.stale = true;
      loads.delete(key);
    }
  };
  void opts.broadcast.subscribe(opts.topic, forgetLocally);

  function load(key: string): Promise<V> {
    const pending = { promise: opts.load(key), stale: false };
    loads.set(key, pending);
    void pending.promise.then(
      (value) => {
        if (pending.stale) return;
        loads.delete(key);
        if (value === undefined) return;
        const until = Math.min(Date.now() + ttlMs, opts.expiresAt?.(value) ?? Infinity);
        if (entries.size >= maxEntries) entries.delete(entries.keys().next().value!);
        entries.set(key, { value, until });
      },
      () => {
        if (loads.get(key) === pending) loads.delete(key);
      },
    );
    return pending.promise;
  }

  return {
    get(key) {
      const entry = entries.get(key);
      if (entry) {
        if (Date.now() < entry.until) return Promise.resolve(entry.value);
        entries.delete(key);
      }
      return loads.get(key)?.promise ?? load(key);
    },
    async forget(key) {
      forgetLocally(key);
      await opts.broadcast.publish(opts.topic, key).catch((err: unknown) => opts.logger?.error({ err, topic: opts.topic, key }, 'could not broadcast a cache notice; other processes trust their copy until it expires'));
    },
  };
}
