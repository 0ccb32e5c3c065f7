import { z } from 'zod';

/**
 * A calendar day as `YYYY-MM-DD` that PostgreSQL takes too: a real date
 * (Date.parse reads 2026-02-30 as March 2nd), and not year 0, which
 * JavaScript's Date has and PostgreSQL does not.
 */
export const calendarDay = z
  .string()
  .regex(/^\d{4}-\d{2}-\d{2}$/, 'must be a date, YYYY-MM-DD')
  .refine((d) => {
    const t = Date.parse(`${d}T00:00:00Z`);
    return !d.startsWith('0000') && !Number.isNaN(t) && new Date(t).toISOString().startsWith(d);
  }, 'must be a real date');

/** The last instant a stored timestamp can be written back as ISO text (`toISOString` of a later one is `+010000-…`). */
export const LAST_INSTANT = Date.parse('9999-12-31T23:59:59.999Z');
