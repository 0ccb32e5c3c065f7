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

/** The budget period containing `now`, with day and month boundaries at midnight in `timezone` (an IANA zone; UTC if unknown). */
export function periodOf(period: BudgetPeriod, timezone: string, now: Date = new Date()): Period {
  if (period === 'total') return { key: 'total', startsAt: null, resetsAt: null };
  let local = DateTime.fromJSDate(now, { zone: timezone });
  if (!local.isValid) local = DateTime.fromJSDate(now, { zone: 'UTC' });
  const unit = period === 'day' ? 'day' : 'month';
  const start = local.startOf(unit);
  const next = start.plus(unit === 'day' ? { days: 1 } : { months: 1 });
  return { key: start.toFormat(unit === 'day' ? 'yyyy-MM-dd' : 'yyyy-MM'), startsAt: start.toJSDate(), resetsAt: next.toJSDate() };
}
