import { RateLimiterMemory, RateLimiterRedis, RateLimiterRes, type RateLimiterAbstract } from 'rate-limiter-flexible';
import type { Redis } from 'ioredis';
import type { Logger } from '../observability/logger.ts';

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
    if (!res) return { allowed: true, limit: this.spec.points, remaining: this.spec.points, resetMs: 0 };
    return this.#result(res, res.consumedPoints <= this.spec.points);
  }

  async reset(key: string): Promise<void> {
    await this.#store((impl) => impl.delete(key));
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

export interface LimiterFactory {
  create(spec: LimiterSpec): Limiter;
}

const memoryImpl = (spec: LimiterSpec) =>
  new RateLimiterMemory({ keyPrefix: spec.name, points: spec.points, duration: spec.durationSeconds, blockDuration: spec.blockSeconds ?? 0 });

export function memoryLimiters(): LimiterFactory {
  return { create: (spec) => new Limiter(spec, memoryImpl(spec)) };
}

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
  return {
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
