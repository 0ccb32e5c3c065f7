import { and, eq, inArray, lt, ne } from 'drizzle-orm';
import type { EventBus } from '../../platform/bus/bus.ts';
import type { Db } from '../../platform/db/database.ts';
import type { Logger } from '../../platform/observability/logger.ts';
import type { BudgetEntry } from './budgets.ts';
import type { Ledger } from './ledger.ts';
import { budgetAlerts } from './schema.ts';

/** The shares of a budget its owner is told of, once each per period. */
export const BUDGET_THRESHOLDS = [80, 100] as const;
export type BudgetThreshold = (typeof BUDGET_THRESHOLDS)[number];

/** Claims of ended day and month periods are kept this long, then purged (a total budget's stay). */
const KEEP_MS = 40 * 24 * 3600 * 1000;

interface Watch {
  entry: BudgetEntry;
  userId: string;
  /** Thresholds this process knows are claimed (by it or another instance) for this counter's period. */
  claimed: Set<number>;
  lastRun: number;
  /** Checks still wanted: the next one, and with a shared ledger one more after the others' spend is written back. */
  wanted: number;
  timer: NodeJS.Timeout | undefined;
  running: Promise<void> | undefined;
}

/**
 * Tells a budget's owner when their spend reaches 80 % and 100 % of it, once per threshold and period
 * across the cluster. Off the request path: after a call settles, the counters it drew on are read (at
 * most once a second per counter in this process, the last call always followed by a check); a threshold
 * reached is claimed by inserting its row, and only the instance whose insert went in publishes the
 * `budget.threshold` event. With Redis counters, other instances' spend reaches a counter at their next
 * flush, so each check is followed by one more a second later.
 *
 * A call that jumps past both thresholds tells only the higher one. Raising a limit in a period does not
 * tell a threshold again.
 */
export function createBudgetAlerts(d: { db: Db; ledger: Ledger; bus: Pick<EventBus, 'publish'>; logger?: Logger; shared: boolean; intervalMs?: number }) {
  const intervalMs = d.intervalMs ?? 1_000;
  const watches = new Map<string, Watch>();
  let closed = false;

  function schedule(w: Watch) {
    if (w.timer || closed) return;
    const wait = Math.max(0, w.lastRun + intervalMs - Date.now());
    w.timer = setTimeout(() => void run(w), wait);
    w.timer.unref();
  }

  async function run(w: Watch) {
    w.timer = undefined;
    if (w.running) await w.running;
    w.lastRun = Date.now();
    w.wanted--;
    w.running = check(w)
      .catch((err: unknown) => d.logger?.warn({ err, budgetId: w.entry.budget.id }, 'could not check a budget for its thresholds; the next call checks again'))
      .finally(() => (w.running = undefined));
    await w.running;
    if (w.wanted > 0 && !done(w)) schedule(w);
  }

  const done = (w: Watch) => BUDGET_THRESHOLDS.every((t) => w.claimed.has(t));

  function percentOf(used: { micros: number; tokens: number }, e: BudgetEntry): number {
    let percent = 0;
    if (e.limitMicros) percent = Math.max(percent, (100 * used.micros) / e.limitMicros);
    if (e.limitTokens) percent = Math.max(percent, (100 * used.tokens) / e.limitTokens);
    return percent;
  }

  async function check(w: Watch) {
    const e = w.entry;
    const [counter] = await d.ledger.read([e]);
    const spent = counter!.used;
    const percent = percentOf(spent, e);
    const reached = BUDGET_THRESHOLDS.filter((t) => percent >= t && !w.claimed.has(t));
    if (!reached.length) return;
    const rows = reached.map((threshold) => ({ budgetId: e.budget.id, userId: w.userId, periodKey: e.period.key, threshold }));
    const won = (await d.db.insert(budgetAlerts).values(rows).onConflictDoNothing().returning({ threshold: budgetAlerts.threshold })).map((r) => r.threshold);
    const top = reached.at(-1)!;
    if (won.includes(top)) {
      const b = e.budget;
      try {
        await d.bus.publish('budget.threshold', {
          userId: w.userId,
          budgetId: b.id,
          scope: b.scope,
          subjectId: b.subjectId,
          percent: top,
          period: b.period,
          periodKey: e.period.key,
          resetsAt: e.period.resetsAt?.toISOString() ?? null,
          spent: { micros: spent.micros, tokens: spent.tokens },
          limit: { micros: e.limitMicros, tokens: e.limitTokens },
        });
      } catch (err) {
        // Not announced: the claims go, so the next check claims and announces again.
        await d.db
          .delete(budgetAlerts)
          .where(and(eq(budgetAlerts.budgetId, b.id), eq(budgetAlerts.userId, w.userId), eq(budgetAlerts.periodKey, e.period.key), inArray(budgetAlerts.threshold, won)));
        throw err;
      }
    }
    for (const t of reached) w.claimed.add(t);
  }

  return {
    /** A call by `userId` settled on these counters: check them soon (never on the caller's path). */
    touch(userId: string, entries: readonly BudgetEntry[]) {
      if (closed) return;
      for (const entry of entries) {
        if (entry.limitMicros === null && entry.limitTokens === null) continue;
        let w = watches.get(entry.key);
        if (!w) {
          if (watches.size >= 50_000) for (const [key, old] of watches) if (!old.timer && !old.running) watches.delete(key);
          w = { entry, userId, claimed: new Set(), lastRun: 0, wanted: 0, timer: undefined, running: undefined };
          watches.set(entry.key, w);
        }
        w.entry = entry;
        if (done(w)) continue;
        w.wanted = d.shared ? 2 : 1;
        schedule(w);
      }
    },

    /** Forgets claims of day and month periods long over (a total budget's are kept). */
    async purge(now = new Date()): Promise<number> {
      const rows = await d.db
        .delete(budgetAlerts)
        .where(and(ne(budgetAlerts.periodKey, 'total'), lt(budgetAlerts.createdAt, new Date(now.getTime() - KEEP_MS))))
        .returning({ budgetId: budgetAlerts.budgetId });
      return rows.length;
    },

    /** Checks now what is scheduled, then stops (a graceful shutdown). */
    async close() {
      closed = true;
      const pending = [...watches.values()].filter((w) => w.timer || w.running);
      for (const w of pending) {
        clearTimeout(w.timer);
        w.timer = undefined;
      }
      await Promise.all(pending.map((w) => w.running ?? check(w).catch((err: unknown) => d.logger?.warn({ err }, 'could not check a budget for its thresholds at shutdown'))));
    },
  };
}

export type BudgetAlerts = ReturnType<typeof createBudgetAlerts>;
