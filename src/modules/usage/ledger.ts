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

/** A counter as one process sees it; with Redis, other processes' calls count from their last sync on. */
export interface Counter {
  used: Amount;
  /** Estimates of calls in flight (not room leased and idle). */
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
  /**
   * Adds what a call spent to counters it reserved nothing on (budgets set while it ran), those that exist:
   * the caller makes them exist (`read`) before the call's usage event is recorded, so no seed counts it too.
   * Issues the update before returning, as `settle` does.
   */
  add(keys: string[], actual: Amount): Promise<void>;
  read(entries: LedgerEntry[]): Promise<Counter[]>;
  /** Writes back what this process holds: part of a graceful shutdown. */
  close(): Promise<void>;
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
    async add(keys, actual) {
      for (const key of keys) {
        const c = counters.get(key);
        if (!c) continue;
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
    async close() {},
  };
}
