import { Redis, ReplyError, type RedisOptions } from 'ioredis';
import { AppError, DependencyUnavailable, OperatorError } from '../../errors.ts';
import type { Logger } from '../observability/logger.ts';

/**
 * What a request refused for want of Redis tells its client to wait: about
 * ioredis' longest pause between reconnect attempts (5 s plus jitter), so by
 * then this process has tried Redis again.
 */
export const REDIS_RETRY_AFTER_SECONDS = 5;

/**
 * A connection that has answered nothing for this long while commands wait is
 * dead (a host gone without closing its sockets): it is dropped, so those
 * commands fail and the next ones fail at once until it is back.
 */
const SOCKET_TIMEOUT_MS = 2_000;

/**
 * Until a connection is first ready (start-up), ioredis' queueing as before:
 * commands issued meanwhile wait in the offline queue, and fail once a few
 * connection attempts have (Redis not up yet: start-up fails rather than hangs).
 */
const OPTIONS: RedisOptions = { enableOfflineQueue: true, maxRetriesPerRequest: 3, socketTimeout: SOCKET_TIMEOUT_MS };

/**
 * Once ready, fail fast, so a request that needs Redis while it is
 * unreachable is answered at once (503, or served without it) rather than
 * held. With the start-up options, a command issued while the connection is
 * down waits in the offline queue, and one in flight when it drops is kept to
 * be resent, until ioredis flushes its queues, at every fourth failed
 * reconnect attempt (`maxRetriesPerRequest` 3): once the backoff has grown to
 * 5 s, up to 20 s, after which the request failed with a 500 anyway. Here a
 * command issued while disconnected fails at
 * once (no offline queue), and one in flight fails when the connection drops
 * (it may or may not have run, and is not resent). Reconnecting is unchanged:
 * when Redis returns, the next commands go through. ioredis reads both options
 * at each command and each reconnect attempt, so they apply from then on.
 */
const ONCE_READY: Pick<RedisOptions, 'enableOfflineQueue' | 'maxRetriesPerRequest'> = { enableOfflineQueue: false, maxRetriesPerRequest: 0 };

/** The connection every Redis adapter shares; `logger` hears when Redis becomes unreachable and when it is back, once each. */
export function openRedis(url: string, logger?: Logger): Redis {
  const redis = new Redis(url, OPTIONS);
  let down = false;
  redis.on('error', (err: Error) => {
    // Before it was ever reached, the start waits for it (reachRedis), and says so if it gives up.
    if (down || !connected.has(redis)) return;
    down = true;
    logger?.warn({ err }, 'Redis is unreachable: what needs it answers 503 dependency_unavailable, the rest is served without it, until it is back');
  });
  redis.on('ready', () => {
    if (down) logger?.info('Redis is reachable again');
    down = false;
  });
  return failFast(redis);
}

/**
 * Another connection to the same Redis that fails fast the same way (a
 * subscriber, a blocking reader). For blocking reads, `blockMs` is the longest
 * a command may wait for its answer before the connection counts as dead.
 */
export function duplicateRedis(redis: Redis, opts: { blockMs?: number } = {}): Redis {
  const socketTimeout = opts.blockMs === undefined ? SOCKET_TIMEOUT_MS : opts.blockMs + SOCKET_TIMEOUT_MS;
  const copy = redis.duplicate({ ...OPTIONS, socketTimeout });
  // The connection it copies reports outages; without a listener ioredis prints every failed attempt.
  copy.on('error', () => {});
  return failFast(copy);
}

const connected = new WeakSet<Redis>();

/** How long a start waits for Redis to answer for the first time. */
const START_WAIT_MS = 10_000;

/**
 * Waits for a new connection's first ready: Parley does not start without the Redis it was configured with (its
 * bus, queues and limits are there). One that cannot be reached stops the start with a message naming it,
 * where its commands would have failed one by one with ioredis' MaxRetriesPerRequestError.
 */
export async function reachRedis(redis: Redis, url: string, withinMs = START_WAIT_MS): Promise<void> {
  if (redis.status === 'ready') return;
  let last: Error | undefined;
  const onError = (err: Error) => (last = err);
  redis.on('error', onError);
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        redis.off('ready', ready);
        reject(
          new OperatorError(
            `Redis at ${new URL(url).host} (REDIS_URL) cannot be reached${last ? ` (${last.message})` : ''}: Parley waits ${withinMs / 1000} s for it at start. ` +
              'Start Redis, or unset REDIS_URL to run without it.',
          ),
        );
      }, withinMs);
      const ready = () => {
        clearTimeout(timer);
        resolve();
      };
      redis.once('ready', ready);
    });
  } finally {
    redis.off('error', onError);
  }
}

function failFast(redis: Redis): Redis {
  redis.once('ready', () => {
    connected.add(redis);
    Object.assign(redis.options, ONCE_READY);
  });
  return redis;
}

/** Whether a connection that has been up is down now. Before it first connects, its commands wait for it (start-up): not down. */
export const isDown = (redis: Redis): boolean => connected.has(redis) && redis.status !== 'ready';

/** 503 dependency_unavailable, "Redis is unavailable". */
export const redisUnavailable = (cause?: unknown) => DependencyUnavailable('Redis', REDIS_RETRY_AFTER_SECONDS, cause);

/**
 * Whether a command's failure says Redis could not be reached (connection
 * down, dropped, timed out) rather than that Redis answered with an error (a
 * script error, WRONGTYPE: a bug, not an outage).
 */
const isUnreachable = (err: unknown): boolean => err instanceof Error && !(err instanceof ReplyError);

/** The result of a command a request cannot do without: if Redis cannot be reached, a 503 `redisUnavailable` error. */
export async function needRedis<T>(command: Promise<T>): Promise<T> {
  try {
    return await command;
  } catch (err) {
    throw isUnreachable(err) && !(err instanceof AppError) ? redisUnavailable(err) : err;
  }
}

export type { Redis };
