import { RateLimiterMemory, RateLimiterRedis, RateLimiterRes, type RateLimiterAbstract } from 'rate-limiter-flexible';
import type { Redis } from 'ioredis';

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

/** A named fixed-window counter: in memory on one machine, in Redis across many. */
export class Limiter {
  readonly spec: LimiterSpec;
  readonly #impl: RateLimiterAbstract;

  constructor(spec: LimiterSpec, impl: RateLimiterAbstract) {
    this.spec = spec;
    this.#impl = impl;
  }

  async consume(key: string, points = 1): Promise<LimitResult> {
    try {
      return this.#result(await this.#impl.consume(key, points), true);
    } catch (err) {
      if (err instanceof RateLimiterRes) return this.#result(err, false);
      throw err;
    }
  }

  /** Current state without counting a hit. */
  async peek(key: string): Promise<LimitResult> {
    const res = await this.#impl.get(key);
    if (!res) return { allowed: true, limit: this.spec.points, remaining: this.spec.points, resetMs: 0 };
    return this.#result(res, res.consumedPoints <= this.spec.points);
  }

  async reset(key: string): Promise<void> {
    await this.#impl.delete(key);
  }

  #result(res: RateLimiterRes, allowed: boolean): LimitResult {
    return { allowed, limit: this.spec.points, remaining: Math.max(0, res.remainingPoints), resetMs: res.msBeforeNext };
  }
}

export interface LimiterFactory {
  create(spec: LimiterSpec): Limiter;
}

export function memoryLimiters(): LimiterFactory {
  return {
    create: (spec) =>
      new Limiter(spec, new RateLimiterMemory({ keyPrefix: spec.name, points: spec.points, duration: spec.durationSeconds, blockDuration: spec.blockSeconds ?? 0 })),
  };
}

export function redisLimiters(redis: Redis, prefix: string): LimiterFactory {
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
      ),
  };
}
