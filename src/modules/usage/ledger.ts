import type { Redis } from 'ioredis';
import { luaScript } from '../../platform/redis/scripts.ts';

/** Money in micro-dollars and tokens; what a call is estimated to cost or did cost. */
export interface Amount {
  micros: number;
  tokens: number;
}

export interface LedgerEntry {
  /** One counter per budget and period, e.g. `budget:<id>:2026-11`. */
  key: string;
  limitMicros: number | null;
  limitTokens: number | null;
  /** When the counter may be forgotten (after its period); null keeps it. */
  expiresAt: Date | null;
  /** What was spent in this period before the counter existed (from the database). */
  seed: () => Promise<Amount>;
}

export interface Counter {
  used: Amount;
  /** Estimates of calls in flight. */
  reserved: Amount;
}

export type ReserveResult = { ok: true } | { ok: false; index: number };

/**
 * Budget counters. `reserve` checks every entry and, only if all have room,
 * adds the estimate to each as one atomic step; `settle` swaps the estimate
 * for the actual amount. Room means the counter is below its limit and the
 * estimate fits, so concurrent calls overshoot a budget by no more than what
 * those in flight spend beyond their estimates.
 */
export interface Ledger {
  reserve(entries: LedgerEntry[], estimate: Amount): Promise<ReserveResult>;
  /** Issues the update before returning (callers may not await it): later calls from this process see it. */
  settle(keys: string[], reserved: Amount, actual: Amount): Promise<void>;
  read(entries: LedgerEntry[]): Promise<Counter[]>;
}

const over = (used: number, reserved: number, add: number, limit: number | null) => limit !== null && (used + reserved >= limit || used + reserved + add > limit);

/** One process: counters in a Map, seeded from the database on first use. */
export function memoryLedger(now: () => number = Date.now): Ledger {
  const counters = new Map<string, Counter & { expiresAt: number | null }>();
  let lastSweep = now();

  async function counter(e: LedgerEntry) {
    let c = counters.get(e.key);
    if (!c) {
      const used = await e.seed();
      // Another call may have seeded it while we waited.
      c = counters.get(e.key) ?? { used, reserved: { micros: 0, tokens: 0 }, expiresAt: e.expiresAt?.getTime() ?? null };
      counters.set(e.key, c);
    }
    return c;
  }

  function sweep() {
    const t = now();
    if (t - lastSweep < 60_000) return;
    lastSweep = t;
    for (const [key, c] of counters) if (c.expiresAt !== null && c.expiresAt < t) counters.delete(key);
  }

  return {
    async reserve(entries, estimate) {
      sweep();
      const cs = [];
      for (const e of entries) cs.push(await counter(e));
      // No await from here on: the check and the reservation are one step.
      for (let i = 0; i < entries.length; i++) {
        const c = cs[i]!;
        if (over(c.used.micros, c.reserved.micros, estimate.micros, entries[i]!.limitMicros) || over(c.used.tokens, c.reserved.tokens, estimate.tokens, entries[i]!.limitTokens)) {
          return { ok: false, index: i };
        }
      }
      for (const c of cs) {
        c.reserved.micros += estimate.micros;
        c.reserved.tokens += estimate.tokens;
      }
      return { ok: true };
    },
    async settle(keys, reserved, actual) {
      for (const key of keys) {
        const c = counters.get(key);
        if (!c) continue;
        c.reserved.micros -= reserved.micros;
        c.reserved.tokens -= reserved.tokens;
        c.used.micros += actual.micros;
        c.used.tokens += actual.tokens;
      }
    },
    async read(entries) {
      const out: Counter[] = [];
      for (const e of entries) {
        const c = await counter(e);
        out.push({ used: { ...c.used }, reserved: { ...c.reserved } });
      }
      return out;
    },
  };
}

// KEYS: counters. ARGV: estimate micros, estimate tokens, then per key: limit micros, limit tokens (-1 = none).
const RESERVE = `
for i = 1, #KEYS do
  if redis.call('EXISTS', KEYS[i]) == 0 then return {'missing', i} end
end
local am, at = tonumber(ARGV[1]), tonumber(ARGV[2])
for i = 1, #KEYS do
  local v = redis.call('HMGET', KEYS[i], 'um', 'ut', 'rm', 'rt')
  local um, ut, rm, rt = tonumber(v[1]) or 0, tonumber(v[2]) or 0, tonumber(v[3]) or 0, tonumber(v[4]) or 0
  local lm, lt = tonumber(ARGV[1 + 2 * i]), tonumber(ARGV[2 + 2 * i])
  if lm >= 0 and (um + rm >= lm or um + rm + am > lm) then return {'over', i} end
  if lt >= 0 and (ut + rt >= lt or ut + rt + at > lt) then return {'over', i} end
end
for i = 1, #KEYS do
  redis.call('HINCRBY', KEYS[i], 'rm', am)
  redis.call('HINCRBY', KEYS[i], 'rt', at)
end
return {'ok', 0}`;

// KEYS[1]: counter. ARGV: used micros, used tokens, expire-at unix seconds (0 = never). Only the first seed counts.
const SEED = `
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], 'um', ARGV[1], 'ut', ARGV[2], 'rm', 0, 'rt', 0)
if tonumber(ARGV[3]) > 0 then redis.call('EXPIREAT', KEYS[1], ARGV[3]) end
return 1`;

// KEYS: counters. ARGV: minus the reserved micros and tokens, the actual micros and tokens (integers as
// the client wrote them: Lua would print a negated 0 as "-0", which HINCRBY refuses). A counter gone with
// its period is left alone.
const SETTLE = `
for i = 1, #KEYS do
  if redis.call('EXISTS', KEYS[i]) == 1 then
    redis.call('HINCRBY', KEYS[i], 'rm', ARGV[1])
    redis.call('HINCRBY', KEYS[i], 'rt', ARGV[2])
    redis.call('HINCRBY', KEYS[i], 'um', ARGV[3])
    redis.call('HINCRBY', KEYS[i], 'ut', ARGV[4])
  end
end
return 1`;

/** Many processes: one Redis hash per counter, checked and reserved by one Lua script. */
export function redisLedger(redis: Redis, prefix: string): Ledger {
  const k = (key: string) => `${prefix}${key}`;
  const scripts = { reserve: luaScript(redis, RESERVE), seed: luaScript(redis, SEED), settle: luaScript(redis, SETTLE) };
  // Kept a day past its period, so late settlements still land and /usage/limits can show the last period.
  const expireAt = (e: LedgerEntry) => (e.expiresAt ? Math.ceil(e.expiresAt.getTime() / 1000) + 86_400 : 0);

  async function seed(e: LedgerEntry) {
    const used = await e.seed();
    await scripts.seed([k(e.key)], [Math.round(used.micros), Math.round(used.tokens), expireAt(e)]);
  }

  return {
    async reserve(entries, estimate) {
      if (!entries.length) return { ok: true };
      const limits = entries.flatMap((e) => [e.limitMicros ?? -1, e.limitTokens ?? -1]);
      for (let tries = 0; ; tries++) {
        const [status, index] = (await scripts.reserve(
          entries.map((e) => k(e.key)),
          [Math.round(estimate.micros), Math.round(estimate.tokens), ...limits],
        )) as [string, number];
        if (status === 'ok') return { ok: true };
        if (status === 'over') return { ok: false, index: index - 1 };
        if (tries > 2) throw new Error(`budget counter ${entries[index - 1]!.key} could not be seeded`);
        await seed(entries[index - 1]!);
      }
    },
    async settle(keys, reserved, actual) {
      if (!keys.length) return;
      const int = (n: number) => String(Math.round(n) || 0);
      await scripts.settle(keys.map(k), [int(-reserved.micros), int(-reserved.tokens), int(actual.micros), int(actual.tokens)]);
    },
    async read(entries) {
      const out: Counter[] = [];
      for (const e of entries) {
        let v = await redis.hmget(k(e.key), 'um', 'ut', 'rm', 'rt');
        if (v[0] === null) {
          await seed(e);
          v = await redis.hmget(k(e.key), 'um', 'ut', 'rm', 'rt');
        }
        const n = v.map((x) => Number(x ?? 0));
        out.push({ used: { micros: n[0]!, tokens: n[1]! }, reserved: { micros: n[2]!, tokens: n[3]! } });
      }
      return out;
    },
  };
}
