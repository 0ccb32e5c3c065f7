import { ValidationError } from '../../errors.ts';

/** The longest range one report or export may span. */
export const MAX_REPORT_DAYS = 400;

const today = () => new Date().toISOString().slice(0, 10);
const monthStart = () => `${today().slice(0, 7)}-01`;

/** A report's UTC days, inclusive: this month so far unless given; 400 on a reversed or too long range. */
export function reportRange(q: { from?: string; to?: string }) {
  const from = q.from ?? monthStart();
  const to = q.to ?? today();
  if (from > to) throw ValidationError('from must not be after to', 'invalid_range');
  if ((Date.parse(to) - Date.parse(from)) / 86_400_000 >= MAX_REPORT_DAYS) throw ValidationError(`A report spans at most ${MAX_REPORT_DAYS} days`, 'range_too_long');
  return { from, to };
}
