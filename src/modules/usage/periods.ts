import { DateTime } from 'luxon';
import type { BudgetPeriod } from './schema.ts';

export interface Period {
  /** Names the period in counter keys: `2026-11-22`, `2026-11` or `total`. */
  key: string;
  /** When it began; null for `total`. */
  startsAt: Date | null;
  /** When the next one begins; null for `total`, which never resets. */
  resetsAt: Date | null;
}

// Computing a period with time zones costs tens of µs, on every budgeted call; it only changes at midnight.
const recent = new Map<string, Period>();

/** The budget period containing `now`, with day and month boundaries at midnight in `timezone` (an IANA zone; UTC if unknown). */
export function periodOf(period: BudgetPeriod, timezone: string, now: Date = new Date()): Period {
  if (period === 'total') return { key: 'total', startsAt: null, resetsAt: null };
  const cacheKey = `${period}|${timezone}`;
  const hit = recent.get(cacheKey);
  if (hit && now >= hit.startsAt! && now < hit.resetsAt!) return hit;
  const computed = compute(period, timezone, now);
  if (recent.size > 1_000) recent.clear();
  recent.set(cacheKey, computed);
  return computed;
}

function compute(period: 'day' | 'month', timezone: string, now: Date): Period {
  let local = DateTime.fromJSDate(now, { zone: timezone });
  if (!local.isValid) local = DateTime.fromJSDate(now, { zone: 'UTC' });
  const unit = period === 'day' ? 'day' : 'month';
  const start = local.startOf(unit);
  const next = start.plus(unit === 'day' ? { days: 1 } : { months: 1 });
  return { key: start.toFormat(unit === 'day' ? 'yyyy-MM-dd' : 'yyyy-MM'), startsAt: start.toJSDate(), resetsAt: next.toJSDate() };
}
