import { randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { Logger } from '../../platform/observability/logger.ts';
import { needRedis } from '../../platform/redis/redis.ts';
import { luaScript } from '../../platform/redis/scripts.ts';
import { ADD, READ, SEED, SYNC } from './ledger-scripts.ts';
import type { Amount, Counter, Ledger, LedgerEntry, ReserveResult } from './ledger.ts';

export interface LeaseOptions {
  /** How often spend is written back and leases are renewed, resized or given back; 0: only by flush() and close(). */
  syncIntervalMs?: number;
  /** A lease not renewed for this long belonged to a process that died: the room goes back to the budget. */
  leaseTtlMs?: number;
  /** The most room a lease holds beyond the calls it covers, as a share of the limit. 0: exactly each call's estimate. */
  leaseShare?: number;
  logger?: Logger;
}

const DIMS = ['micros', 'tokens'] as const;
type Dim = (typeof DIMS)[number];
type Limits = Record<Dim, number | null>;

/** A lease starting from nothing covers this many calls like the one that asked for it. */
const FIRST_LEASE_CALLS = 4;
/** A script call carries at most this many counters: one flush stays a short step for Redis. */
const KEYS_PER_TRIP = 500;

/** One budget counter as this process holds it. */
interface Held {
  key: string;
  /** The limits the lease was last sized against (null: no lease for that dimension yet). */
  sizedFor: Limits;
  /** The limits the latest call passed: the next flush sizes the lease against them. */
  limits: Limits;
  /** Room Redis holds for this process, as of the last answer. */
  lease: Amount;
  /** Estimates of calls admitted here and not settled. */
  inFlight: Amount;
  /** Settled spend not written back yet; `sending` is the part trips under way carry. */
  unflushed: Amount;
  sending: Amount;
  /** Lease room used since the last flush (estimates, and spend beyond them) and in the interval before: the next lease's size. */
  drawn: Amount;
  drawnBefore: Amount;
  /** The trip under way for this counter: calls short of room wait for it rather than send their own. */
  trip: Promise<void> | null;
}

interface Sync {
  h: Held;
  /** The spend this trip writes back: what no earlier trip carries. Set when it is sent. */
  carried?: Amount;
  limits: Limits;
  back: Amount;
  /** The estimate of the call waiting on this trip; null for a flush. */
  need: Amount | null;
  want: Amount;
}

type Reply = [status: 'ok' | 'over' | 'missing', index: number, ...leases: number[]];

const zero = (): Amount => ({ micros: 0, tokens: 0 });
const noop = () => {};
// Integers as Redis wants them: Lua would print a negated 0 as "-0", which HINCRBY refuses.
const int = (n: number) => Math.round(n) || 0;
const limitsOf = (e: LedgerEntry): Limits => ({ micros: e.limitMicros, tokens: e.limitTokens });
const free = (h: Held, d: Dim) => h.lease[d] - h.inFlight[d] - h.unflushed[d];

/**
 * Many processes, with leases: each process takes room from a Redis counter
 * in chunks and serves reservations from it locally, with no round trip;
 * settles are local too and written back in one script call per flush
 * (every `syncIntervalMs`, and on close). A call short of room extends the
 * lease first (one trip, shared by the calls short at the same time) and is
 * refused only when the budget itself has no room.
 *
 * The trade-off: room leased to one process is refused to the others until it
 * is spent or given back. A lease holds what the process drew in about two
 * sync intervals, at most `leaseShare` of the limit and a quarter of the room
 * nobody holds; an idle counter gives its lease back at the next flush but
 * one. Near the limit a lease is exactly the waiting call's estimate, as
 * without leases, so the overshoot bound is unchanged: only calls spending
 * more than their estimates go beyond a limit. A limit lowered below the one
 * a lease was sized against drops the lease at the next call.
 *
 * A process that dies leaves its lease (and the estimates of its calls under
 * way) in the counter until `leaseTtlMs` passes without a flush renewing it;
 * then any process reclaims it. What it settled since its last flush never
 * reaches the counter: a crash undercounts at most one sync interval of that
 * process's spend.
 *
 * While Redis is unreachable, calls within the room this process holds go on;
 * a call short of room, and a read, are refused with 503
 * `dependency_unavailable` (what the others spent is not known); settles stay
 * here until a flush reaches Redis again.
 */
export function redisLedger(redis: Redis, prefix: string, opts: LeaseOptions = {}): Ledger & { flush(): Promise<void> } {
  const syncIntervalMs = opts.syncIntervalMs ?? 500;
  const leaseTtlMs = opts.leaseTtlMs ?? Math.max(10_000, 20 * syncIntervalMs);
  const leaseShare = opts.leaseShare ?? 0.05;
  const me = `p:${randomBytes(8).toString('hex')}`;
  const k = (key: string) => `${prefix}${key}`;
  // Without Redis a call short of room, or a read, cannot know what the budget has left: 503, not a 500.
  const script = (source: string) => {
    const run = luaScript(redis, source);
    return (keys: string[], args: Array<string | number>) => needRedis(run(keys, args));
  };
  const scripts = { sync: script(SYNC), read: script(READ), seed: script(SEED), add: script(ADD) };
  // Kept a day past its period, so late settlements still land and /usage/limits can show the last period.
  const expireAt = (e: LedgerEntry) => (e.expiresAt ? Math.ceil(e.expiresAt.getTime() / 1000) + 86_400 : 0);
  const held = new Map<string, Held>();
  let flushing: Promise<void> | null = null;
  /** The last flush failed: the next failures (every sync interval while Redis is away) are not logged again. */
  let flushFailed = false;
  const timer = syncIntervalMs > 0 ? setInterval(() => void flush(), syncIntervalMs).unref() : null;

  function hold(e: LedgerEntry): Held {
    let h = held.get(k(e.key));
    if (!h) {
      const none = { micros: null, tokens: null };
      h = { key: k(e.key), sizedFor: none, limits: none, lease: zero(), inFlight: zero(), unflushed: zero(), sending: zero(), drawn: zero(), drawnBefore: zero(), trip: null };
      held.set(h.key, h);
    }
    h.limits = limitsOf(e);
    return h;
  }

  async function seed(e: LedgerEntry) {
    const used = await e.seed();
    await scripts.seed([k(e.key)], [int(used.micros), int(used.tokens), expireAt(e)]);
  }

  /** A limit lowered since the lease was sized: the lease must be resized before this process draws on it again. */
  const lowered = (h: Held, limits: Limits, d: Dim) => limits[d] !== null && (h.sizedFor[d] === null || limits[d] < h.sizedFor[d]);
  const fits = (h: Held, limits: Limits, estimate: Amount) => DIMS.every((d) => limits[d] === null || (!lowered(h, limits, d) && free(h, d) >= Math.max(estimate[d], 1)));

  /** Free room to hold: about two sync intervals of what this process drew, within `leaseShare` of the limit. */
  function wanted(h: Held, limits: Limits, estimate: Amount | null): Amount {
    const want = zero();
    for (const d of DIMS) {
      const limit = limits[d];
      if (limit === null) continue;
      const recent = 2 * Math.max(h.drawn[d], h.drawnBefore[d]);
      want[d] = Math.min(Math.floor(limit * leaseShare), Math.max(recent, FIRST_LEASE_CALLS * (estimate?.[d] ?? 0)));
    }
    return want;
  }

  function take(hs: Held[], estimate: Amount) {
    for (const h of hs) {
      for (const d of DIMS) {
        h.inFlight[d] += estimate[d];
        h.drawn[d] += estimate[d];
      }
    }
  }

  /**
   * One script call for these counters, carrying the spend no trip under way
   * carries (so a counter may have several trips under way; Redis runs them in
   * order and the last answer holds). The room it gives back leaves the local
   * lease before it is sent, so the room this process uses while the trip is
   * under way is never room the trip gives back; the answer sets each lease
   * to what Redis holds. On failure the spend stays unflushed, to be sent
   * again (counted twice at worst: the budget errs on the side of refusing).
   */
  function send(syncs: Sync[], call: boolean, onAnswer?: (reply: Reply) => void): Promise<Reply> {
    const args: Array<string | number> = [me, leaseTtlMs, call ? 1 : 0];
    for (const sync of syncs) {
      const { h, back, need, want } = sync;
      const carried = { micros: h.unflushed.micros - h.sending.micros, tokens: h.unflushed.tokens - h.sending.tokens };
      sync.carried = carried;
      for (const d of DIMS) {
        h.sending[d] += carried[d];
        h.lease[d] -= back[d];
      }
      for (const v of [carried, back, h.inFlight, need ?? { micros: -1, tokens: -1 }, want]) args.push(int(v.micros), int(v.tokens));
      args.push(sync.limits.micros ?? -1, sync.limits.tokens ?? -1);
    }
    const keys = syncs.map((s) => s.h.key);
    const answer = scripts.sync(keys, args).then(
      (r) => {
        const reply = r as Reply;
        syncs.forEach((s, i) => answered(s, reply, i));
        onAnswer?.(reply);
        return reply;
      },
      (err: unknown) => {
        for (const { h, carried } of syncs) for (const d of DIMS) h.sending[d] -= carried![d];
        throw err;
      },
    );
    const trip = answer.then(noop, noop);
    for (const { h } of syncs) {
      h.trip = trip;
      void trip.then(() => {
        if (h.trip === trip) h.trip = null;
      });
    }
    return answer;
  }

  function answered({ h, limits, back, carried }: Sync, [status, , ...leases]: Reply, i: number) {
    for (const d of DIMS) h.sending[d] -= carried![d];
    if (status === 'missing') {
      // Nothing was written: the room is still this process's.
      for (const d of DIMS) h.lease[d] += back[d];
      return;
    }
    for (const d of DIMS) h.unflushed[d] -= carried![d];
    if (leases[2 * i] === -1) {
      held.delete(h.key); // the counter went with its period
      return;
    }
    h.lease = { micros: leases[2 * i]!, tokens: leases[2 * i + 1]! };
    h.sizedFor = limits;
    // Nothing held, nothing owed, and no call since the flush began: forgotten until the next call.
    if (DIMS.every((d) => h.lease[d] === 0 && h.inFlight[d] === 0 && h.unflushed[d] === 0 && h.drawn[d] === 0)) held.delete(h.key);
  }

  /**
   * Extends the leases of the counters short of room: the call's result, or
   * `seeded` (a counter was missing and has been seeded) or null (room taken
   * by others meanwhile): look again.
   */
  async function extend(entries: LedgerEntry[], hs: Held[], short: number[], estimate: Amount): Promise<ReserveResult | 'seeded' | null> {
    let taken = false;
    const syncs = short.map((i): Sync => {
      const h = hs[i]!;
      const limits = limitsOf(entries[i]!);
      const back = zero();
      for (const d of DIMS) if (lowered(h, limits, d)) back[d] = Math.max(0, free(h, d));
      return { h, limits, back, need: estimate, want: wanted(h, limits, estimate) };
    });
    // The call takes its room as the answer lands, before any other call waiting on this trip can.
    const [status, index] = await send(syncs, true, ([status]) => {
      const now = entries.map(hold);
      if (status === 'ok' && now.every((h, i) => fits(h, limitsOf(entries[i]!), estimate))) {
        take(now, estimate);
        taken = true;
      }
    });
    if (status === 'missing') {
      await seed(entries[short[index - 1]!]!);
      return 'seeded';
    }
    if (status === 'over') return { ok: false, index: short[index - 1]! };
    return taken ? { ok: true } : null;
  }

  /** Spent beyond its lease, and not yet sent: the counter in Redis, which only knows the lease, shows less than was spent. */
  const overspent = (h: Held) => DIMS.some((d) => h.limits[d] !== null && h.unflushed[d] > h.sending[d] && free(h, d) < 0);

  /**
   * Writes a counter back at once, not at the next flush: spend beyond the
   * lease is invisible to other processes until then, and a client told its
   * call is done could get another past the budget on another instance. The
   * trip is issued before the caller answers its client (as settles were
   * before leases), so Redis runs it before any call that client makes next;
   * it carries only what no trip under way carries, so it need not wait for
   * them. Spend within the lease needs no hurry: the lease already keeps that
   * room from the others.
   */
  function writeBack(h: Held) {
    send([{ h, limits: h.limits, back: zero(), need: null, want: wanted(h, h.limits, null) }], false).catch((err: unknown) =>
      opts.logger?.warn({ err }, 'could not write budget spend back; retrying at the next flush'),
    );
  }

  async function flush(release = false): Promise<void> {
    if (flushing) return flushing;
    const syncs: Sync[] = [];
    for (const h of held.values()) {
      // A trip is under way: room given back now would reappear here with that trip's answer (which
      // does not know of it) until this flush's own answer. What the trip does not carry goes next time.
      if (h.trip) continue;
      const want = release ? zero() : wanted(h, h.limits, null);
      const back = zero();
      for (const d of DIMS) back[d] = Math.max(0, Math.min(h.lease[d], free(h, d) - want[d]));
      h.drawnBefore = h.drawn;
      h.drawn = zero();
      syncs.push({ h, limits: h.limits, back, need: null, want });
    }
    // Every part is sent at once, so each counter has its trip before any call can start another.
    const parts: Array<Promise<unknown>> = [];
    for (let i = 0; i < syncs.length; i += KEYS_PER_TRIP) {
      parts.push(
        send(syncs.slice(i, i + KEYS_PER_TRIP), false).then(
          () => void (flushFailed = false),
          (err: unknown) => {
            if (!flushFailed) opts.logger?.warn({ err }, 'could not write budget counters back; retrying at each flush');
            flushFailed = true;
          },
        ),
      );
    }
    flushing = Promise.all(parts).then(() => {});
    try {
      await flushing;
    } finally {
      flushing = null;
    }
  }

  return {
    async reserve(entries, estimate) {
      if (!entries.length) return { ok: true };
      const est = { micros: int(estimate.micros), tokens: int(estimate.tokens) };
      for (let seeded = 0; ; ) {
        // Looked up afresh each time: a flush may have forgotten an idle counter while this call waited.
        const hs = entries.map(hold);
        const short = hs.flatMap((h, i) => (fits(h, limitsOf(entries[i]!), est) ? [] : [i]));
        if (!short.length) {
          take(hs, est);
          return { ok: true };
        }
        const under = short.find((i) => hs[i]!.trip);
        if (under !== undefined) {
          await hs[under]!.trip;
          continue;
        }
        const r = await extend(entries, hs, short, est);
        if (r === 'seeded') {
          if (++seeded > 3) throw new Error(`budget counters ${entries.map((e) => e.key).join(', ')} could not be seeded`);
        } else if (r) return r;
      }
    },
    async settle(keys, reserved, actual) {
      for (const key of keys) {
        const h = held.get(k(key));
        if (!h) continue;
        for (const d of DIMS) {
          const r = int(reserved[d]);
          const a = int(actual[d]);
          h.inFlight[d] -= r;
          h.unflushed[d] += a;
          h.drawn[d] += Math.max(0, a - r);
        }
        if (overspent(h)) writeBack(h);
      }
    },
    // Straight to Redis, not through a lease: rare (budgets changed while the call ran), and the counter may
    // be one this process holds no lease on.
    add: async (keys, actual) => {
      if (keys.length) await scripts.add(keys.map(k), [int(actual.micros), int(actual.tokens)]);
    },
    async read(entries) {
      if (!entries.length) return [];
      for (let tries = 0; ; tries++) {
        const hs = entries.map((e) => held.get(k(e.key)));
        // Taken when the read is sent: a trip sent before it is applied before it (one connection, in order).
        const mine = hs.map((h) => ({ used: h ? { micros: h.unflushed.micros - h.sending.micros, tokens: h.unflushed.tokens - h.sending.tokens } : zero(), inFlight: h ? { ...h.inFlight } : zero() }));
        const v = (await scripts.read(entries.map((e) => k(e.key)), [me])) as number[];
        const missing = entries.filter((_, i) => v[5 * i] === 0);
        if (!missing.length) {
          return entries.map((_, i): Counter => ({
            used: { micros: v[5 * i + 1]! + mine[i]!.used.micros, tokens: v[5 * i + 2]! + mine[i]!.used.tokens },
            reserved: { micros: v[5 * i + 3]! + mine[i]!.inFlight.micros, tokens: v[5 * i + 4]! + mine[i]!.inFlight.tokens },
          }));
        }
        if (tries > 2) throw new Error(`budget counters ${missing.map((e) => e.key).join(', ')} could not be seeded`);
        // Every missing one at once: seeding one a try, a user with more unseeded budgets than tries got a 500.
        await Promise.all(missing.map(seed));
      }
    },
    flush: () => flush(),
    async close() {
      if (timer) clearInterval(timer);
      await flushing;
      await Promise.all([...held.values()].map((h) => h.trip));
      await flush(true);
    },
  };
}
