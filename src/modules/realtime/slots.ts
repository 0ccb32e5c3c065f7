import { randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { Logger } from '../../platform/observability/logger.ts';
import { luaScript } from '../../platform/redis/scripts.ts';

/**
 * The sockets each user holds (one slot per authenticated socket): the limit of WS_MAX_CONNECTIONS_PER_USER
 * on them, and whether a user has any at all (presence), in this process or across every instance sharing
 * the Redis.
 */
export interface ConnectionSlots {
  /** Takes a slot for this socket; false when the user already holds the limit (0: none). Taking a slot the socket holds is a no-op. */
  take(userId: string, socketId: string): Promise<boolean>;
  /**
   * Whether the user holds a slot now: an authenticated socket open on any instance. With Redis, a slot
   * of an instance that died counts until it lapses (its TTL after the last renewal). Rejects when Redis
   * cannot be reached and this instance holds no socket of the user.
   */
  connected(userId: string): Promise<boolean>;
  /** Gives the socket's slot back (nothing if it holds none). Never rejects: a failure is logged. */
  release(userId: string, socketId: string): Promise<void>;
  /** Gives back every slot still held here and stops renewing. */
  close(): Promise<void>;
}

export interface RedisSlotOptions {
  limit: number;
  logger: Logger;
  /** A slot not renewed for this long belonged to an instance that died: it is free again. */
  ttlMs?: number;
  /** How often the slots held here are renewed; well under `ttlMs`, so one late or failed renewal loses nothing. */
  refreshMs?: number;
}

/** One process holds every socket (embedded mode): counted in memory. Limit 0: counted (for presence), never refused. */
export function memorySlots(limit: number): ConnectionSlots {
  const users = new Map<string, Set<string>>();
  return {
    async take(userId, socketId) {
      let held = users.get(userId);
      if (held?.has(socketId)) return true;
      if (held && limit > 0 && held.size >= limit) return false;
      if (!held) users.set(userId, (held = new Set()));
      held.add(socketId);
      return true;
    },
    async connected(userId) {
      return users.has(userId);
    },
    async release(userId, socketId) {
      const held = users.get(userId);
      if (held?.delete(socketId) && held.size === 0) users.delete(userId);
    },
    async close() {
      users.clear();
    },
  };
}

// A user's slots are one sorted set: member `<instance>:<socket>`, score the time (ms, Redis's own clock,
// so instances with skewed clocks agree) at which the slot lapses unless renewed. The key itself expires
// with its last slot, so a user whose instances all died leaves nothing behind.
const NOW = `
local clock = redis.call('TIME')
local now = clock[1] * 1000 + math.floor(clock[2] / 1000)
local function expireWithLastSlot(key)
  local last = redis.call('ZRANGE', key, -1, -1, 'WITHSCORES')
  if last[2] then redis.call('PEXPIREAT', key, last[2]) end
end
`;

/** KEYS: the user's set. ARGV: member, limit (0: none), ttl ms. 1: taken (or already held), 0: the user holds the limit. */
const TAKE = `${NOW}
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local limit = tonumber(ARGV[2])
if limit > 0 and not redis.call('ZSCORE', KEYS[1], ARGV[1]) and redis.call('ZCARD', KEYS[1]) >= limit then return 0 end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), ARGV[1])
expireWithLastSlot(KEYS[1])
return 1`;

/**
 * Renews every slot one instance holds. KEYS: users' sets. ARGV: ttl ms, then per key the number of
 * members and the members. A member that is missing (it lapsed while Redis was out of reach, or Redis lost
 * it) is added back without the limit check: it stands for a socket that is open, so counting it keeps
 * the count true, even if that puts the user over the limit until one of their sockets closes.
 */
const RENEW = `${NOW}
local expires = now + tonumber(ARGV[1])
local a = 2
for i = 1, #KEYS do
  local n = tonumber(ARGV[a])
  for j = 1, n do redis.call('ZADD', KEYS[i], expires, ARGV[a + j]) end
  a = a + n + 1
  expireWithLastSlot(KEYS[i])
end
return 0`;

/** KEYS: the user's set. The number of slots that have not lapsed. */
const COUNT = `${NOW}
return redis.call('ZCOUNT', KEYS[1], '(' .. now, '+inf')`;

/** A renewal carries at most this many users: one call stays a short step for Redis. */
const KEYS_PER_TRIP = 500;

/**
 * Slots counted across every instance sharing the Redis: a user holds at most
 * `limit` sockets in the whole cluster (0: any number, still counted, for
 * presence). Each instance renews the slots of its open sockets every
 * `refreshMs`, in one script call for all of them; a slot left by an instance
 * that died (no renewal, no release) lapses `ttlMs` after its last renewal, and
 * only then is free for the user's next socket and no longer makes them present.
 */
export function redisSlots(redis: Redis, prefix: string, opts: RedisSlotOptions): ConnectionSlots {
  const ttlMs = opts.ttlMs ?? 60_000;
  const refreshMs = opts.refreshMs ?? Math.floor(ttlMs / 3);
  const instance = randomBytes(8).toString('hex');
  const key = (userId: string) => `${prefix}ws:slots:${userId}`;
  const member = (socketId: string) => `${instance}:${socketId}`;
  const scripts = { take: luaScript(redis, TAKE), renew: luaScript(redis, RENEW), count: luaScript(redis, COUNT) };
  /** The slots this instance holds, by user key: what every renewal carries. */
  const held = new Map<string, Set<string>>();
  const pending = new Set<Promise<unknown>>();
  let renewing: Promise<void> | null = null;

  const track = <T>(p: Promise<T>) => {
    pending.add(p);
    void p.then(
      () => pending.delete(p),
      () => pending.delete(p),
    );
    return p;
  };

  function hold(k: string, m: string) {
    let members = held.get(k);
    if (!members) held.set(k, (members = new Set()));
    members.add(m);
  }

  function renew(): Promise<void> {
    if (renewing || held.size === 0) return renewing ?? Promise.resolve();
    const entries = [...held];
    const trips: Array<Promise<unknown>> = [];
    for (let i = 0; i < entries.length; i += KEYS_PER_TRIP) {
      const part = entries.slice(i, i + KEYS_PER_TRIP);
      const args: Array<string | number> = [ttlMs];
      for (const [, members] of part) args.push(members.size, ...members);
      trips.push(scripts.renew(part.map(([k]) => k), args));
    }
    renewing = Promise.all(trips)
      .then(
        () => {},
        (err: unknown) => opts.logger.warn({ err }, 'could not renew WebSocket connection slots; retrying at the next renewal'),
      )
      .finally(() => (renewing = null));
    return renewing;
  }

  const timer = setInterval(() => void renew(), refreshMs);
  timer.unref();

  return {
    async take(userId, socketId) {
      const k = key(userId);
      const m = member(socketId);
      try {
        if (Number(await track(scripts.take([k], [m, opts.limit, ttlMs]))) === 0) return false;
      } catch (err) {
        // Fails open: the limit guards against a client piling up sockets, and refusing every new socket
        // while Redis is unreachable would cut off everyone else instead. The slot is held all the same,
        // so the next renewal that reaches Redis counts this socket.
        opts.logger.warn({ err, userId }, 'could not count a WebSocket connection in Redis; admitting it');
      }
      hold(k, m);
      return true;
    },

    async connected(userId) {
      const k = key(userId);
      // A socket here is open now, whatever Redis says (or whether it answers).
      if (held.has(k)) return true;
      return Number(await scripts.count([k], [])) > 0;
    },

    async release(userId, socketId) {
      const k = key(userId);
      const m = member(socketId);
      const members = held.get(k);
      if (!members?.delete(m)) return;
      if (members.size === 0) held.delete(k);
      // Sent after every renewal that carried it (one connection keeps order), so none can add it back.
      await track(redis.zrem(k, m)).catch((err: unknown) =>
        opts.logger.warn({ err, userId }, `could not release a WebSocket connection slot; it lapses within ${ttlMs} ms`),
      );
    },

    async close() {
      clearInterval(timer);
      const left = [...held];
      held.clear();
      const pipeline = redis.pipeline();
      for (const [k, members] of left) pipeline.zrem(k, ...members);
      if (left.length) {
        await pipeline.exec().catch((err: unknown) => opts.logger.warn({ err }, `could not release WebSocket connection slots; they lapse within ${ttlMs} ms`));
      }
      await Promise.allSettled([...pending, renewing]);
    },
  };
}
