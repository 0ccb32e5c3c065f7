import { RateLimiterMemory, RateLimiterRedis, RateLimiterRes, type RateLimiterAbstract } from 'rate-limiter-flexible';
import type { Redis } from 'ioredis';
import type { Logger } from '../observability/logger.ts';
import { luaScript } from '../redis/scripts.ts';

export interface LimitResult {
  allowed: boolean;
  limit: number;
  remaining: number;
  /** Milliseconds until the window frees up. */
  resetMs: number;
}

export interface LimiterSpec {
  name: string;
  points: number;
  durationSeconds: number;
  /** Once exhausted, stay blocked this long (defaults to the rest of the window). */
  blockSeconds?: number;
}

/** Where a limiter counts when its shared store cannot be reached, and who hears of it. */
interface Fallback {
  impl: RateLimiterAbstract;
  onUnreachable(err: unknown, limiter: string): void;
}

/** A named fixed-window counter: in memory on one machine, in Redis across many. */
export class Limiter {
  readonly spec: LimiterSpec;
  readonly #impl: RateLimiterAbstract;
  readonly #fallback: Fallback | undefined;

  constructor(spec: LimiterSpec, impl: RateLimiterAbstract, fallback?: Fallback) {
    this.spec = spec;
    this.#impl = impl;
    this.#fallback = fallback;
  }

  async consume(key: string, points = 1): Promise<LimitResult> {
    try {
      return this.#result(await this.#store((impl) => impl.consume(key, points)), true);
    } catch (err) {
      if (err instanceof RateLimiterRes) return this.#result(err, false);
      throw err;
    }
  }

  /** Current state without counting a hit. */
  async peek(key: string): Promise<LimitResult> {
    const res = await this.#store((impl) => impl.get(key));
    return this.resultOf(res?.consumedPoints, res?.msBeforeNext ?? 0);
  }

  async reset(key: string): Promise<void> {
    await this.#store((impl) => impl.delete(key));
  }

  /** Where the shared store keeps `key`'s counter. */
  storeKey(key: string): string {
    return this.#impl.getKey(key);
  }

  /** A count read from the store (`consumed` undefined: no counter yet), as consume or peek reports it. */
  resultOf(consumed: number | undefined, ttlMs: number): LimitResult {
    if (consumed === undefined) return { allowed: true, limit: this.spec.points, remaining: this.spec.points, resetMs: 0 };
    return { allowed: consumed <= this.spec.points, limit: this.spec.points, remaining: Math.max(0, this.spec.points - consumed), resetMs: ttlMs };
  }

  /** `op` on the store; should the store fail (not refuse: a refusal is a RateLimiterRes), on the fallback. */
  async #store<T>(op: (impl: RateLimiterAbstract) => Promise<T>): Promise<T> {
    const fallback = this.#fallback;
    if (!fallback) return op(this.#impl);
    try {
      return await op(this.#impl);
    } catch (err) {
      if (err instanceof RateLimiterRes) throw err;
      fallback.onUnreachable(err, this.spec.name);
      return op(fallback.impl);
    }
  }

  #result(res: RateLimiterRes, allowed: boolean): LimitResult {
    return { allowed, limit: this.spec.points, remaining: Math.max(0, res.remainingPoints), resetMs: res.msBeforeNext };
  }
}

/** One counter of a batch: a limiter and the subject it counts; `points` to consume (default 1). */
export interface CounterHit {
  limiter: Limiter;
  key: string;
  points?: number;
}

export interface LimiterFactory {
  create(spec: LimiterSpec): Limiter;
  /** Each hit as its limiter's consume, at once: one round trip to a shared store, not one per counter. */
  consumeMany(hits: readonly CounterHit[]): Promise<LimitResult[]>;
  /** Each hit's state as its limiter's peek (counting nothing), at once. */
  peekMany(hits: readonly CounterHit[]): Promise<LimitResult[]>;
}

/** Every hit on its own limiter: right for any store, one round trip each. */
const oneByOne = {
  consumeMany: (hits: readonly CounterHit[]) => Promise.all(hits.map((h) => h.limiter.consume(h.key, h.points))),
  peekMany: (hits: readonly CounterHit[]) => Promise.all(hits.map((h) => h.limiter.peek(h.key))),
};

const memoryImpl = (spec: LimiterSpec) =>
  new RateLimiterMemory({ keyPrefix: spec.name, points: spec.points, duration: spec.durationSeconds, blockDuration: spec.blockSeconds ?? 0 });

export function memoryLimiters(): LimiterFactory {
  return { create: (spec) => new Limiter(spec, memoryImpl(spec)), ...oneByOne };
}

/**
 * Several fixed-window counters in one script: per key, ARGV holds the points
 * to consume and the window in seconds. A consume is rate-limiter-flexible's
 * own (its `rlflxIncr`: the counter made with the window's expiry if new, then
 * incremented), so both read and write the same counters; points 0 reads one
 * without counting (-1 when there is none). Returns {count, ttl ms} per key.
 */
const COUNTERS_LUA = `local out = {}
for i = 1, #KEYS do
  local key = KEYS[i]
  local points = tonumber(ARGV[2 * i - 1])
  local seconds = ARGV[2 * i]
  if points > 0 then
    redis.call('set', key, 0, 'EX', seconds, 'NX')
    local consumed = redis.call('incrby', key, points)
    local ttl = redis.call('pttl', key)
    if ttl == -1 then
      redis.call('expire', key, seconds)
      ttl = 1000 * seconds
    end
    out[i] = {consumed, ttl}
  else
    local value = redis.call('get', key)
    if value then out[i] = {tonumber(value), redis.call('pttl', key)} else out[i] = {-1, 0} end
  end
end
return out`;

/** While Redis is unreachable, one warning this often at most (each request would otherwise log one). */
const OUTAGE_WARN_EVERY_MS = 60_000;

/**
 * Counted in Redis, so a limit holds across every process. While Redis cannot
 * be reached, each process counts in its own memory instead: a limit then
 * holds per process (a client spread over N processes gets up to N times as
 * many), which still stops one client hammering, and nobody is refused for
 * an outage that is not theirs. Once Redis answers, its counts apply again
 * (the in-memory ones lapse with their window). Logged as a warning, at most
 * once a minute.
 */
export function redisLimiters(redis: Redis, prefix: string, logger?: Logger): LimiterFactory {
  let warnedAt = -Infinity;
  let since = 0;
  const onUnreachable = (err: unknown, limiter: string) => {
    since++;
    if (Date.now() - warnedAt < OUTAGE_WARN_EVERY_MS) return;
    logger?.warn({ err, limiter, countedInMemory: since }, 'rate limits cannot reach Redis: counted in this process alone meanwhile');
    warnedAt = Date.now();
    since = 0;
  };
  const counters = luaScript(redis, COUNTERS_LUA);
  /**
   * Counters asked for while the event loop handles one round of I/O (the requests that arrived
   * together) go to Redis in one script call at its end: one command for all of them, not one each.
   * A key asked for twice is counted twice, in order, as two calls would.
   */
  let queued: Array<{ keys: string[]; args: Array<string | number>; done: (rows: Array<[number, number]> | Error) => void }> = [];
  const send = () => {
    const batch = queued;
    queued = [];
    counters(
      batch.flatMap((q) => q.keys),
      batch.flatMap((q) => q.args),
    ).then(
      (rows) => {
        let at = 0;
        for (const q of batch) q.done((rows as Array<[number, number]>).slice(at, (at += q.keys.length)));
      },
      (err: Error) => batch.forEach((q) => q.done(err)),
    );
  };
  const counted = (keys: string[], args: Array<string | number>) =>
    new Promise<Array<[number, number]>>((resolve, reject) => {
      if (!queued.length) setImmediate(send);
      queued.push({ keys, args, done: (rows) => (rows instanceof Error ? reject(rows) : resolve(rows)) });
    });
  /**
   * The hits in one script call, shared with the other hits of the moment. Should it fail (Redis
   * unreachable), or a limiter block beyond its window (which the script does not do), each hit
   * goes its own way, with the usual fallback.
   */
  const many = async (hits: readonly CounterHit[], consume: boolean): Promise<LimitResult[]> => {
    const alone = () => (consume ? oneByOne.consumeMany(hits) : oneByOne.peekMany(hits));
    if (hits.some((h) => h.limiter.spec.blockSeconds)) return alone();
    let rows: Array<[number, number]>;
    try {
      rows = await counted(
        hits.map((h) => h.limiter.storeKey(h.key)),
        hits.flatMap((h) => [consume ? (h.points ?? 1) : 0, h.limiter.spec.durationSeconds]),
      );
    } catch {
      return alone();
    }
    return hits.map((h, i) => {
      const [count, ttl] = rows[i]!;
      return h.limiter.resultOf(count === -1 && !consume ? undefined : count, ttl);
    });
  };
  return {
    consumeMany: (hits) => many(hits, true),
    peekMany: (hits) => many(hits, false),
    create: (spec) =>
      new Limiter(
        spec,
        new RateLimiterRedis({
          storeClient: redis,
          keyPrefix: `${prefix}rl:${spec.name}`,
          points: spec.points,
          duration: spec.durationSeconds,
          blockDuration: spec.blockSeconds ?? 0,
        }),
        { impl: memoryImpl(spec), onUnreachable },
      ),
  };
}
