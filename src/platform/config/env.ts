import { Cron, CronPattern } from 'croner';
import { z } from 'zod';

/** An on/off environment variable: `true`/`false`, `1`/`0`, `yes`/`no`. */
export const envBool = z.enum(['true', 'false', '1', '0', 'yes', 'no']).transform((v) => v === 'true' || v === '1' || v === 'yes');

/** A comma-separated list, blanks dropped. */
export const envList = z.string().transform((v) => v.split(',').map((s) => s.trim()).filter(Boolean));

/** The longest delay a Node timer keeps (2^31-1 ms, about 24.8 days): setTimeout fires a longer one after 1 ms. */
export const MAX_TIMER_MS = 2 ** 31 - 1;
/** MAX_TIMER_MS in whole seconds: the most for a seconds setting that ends up in a timer (a rate limiter's window is one). */
export const MAX_TIMER_SECONDS = Math.floor(MAX_TIMER_MS / 1000);
/** Ten years: a lifetime (a token's, a ban's) this long added to now is still a date, a cookie's Max-Age a sane one. */
export const MAX_LIFETIME_SECONDS = 10 * 365 * 24 * 3600;

/**
 * A whole number from `min` to `max`, in decimal digits. Not `z.coerce.number()`: Number() reads a
 * blank as 0, and takes `0x10` and `1e3`, none of which an operator means.
 */
export const envInt = (min: number, max: number, what = 'a whole number', note = '') => {
  const range = `${what} from ${min} to ${max}${note}`;
  return z
    .string()
    .trim()
    .regex(/^\d+$/, `${range}, in decimal digits`)
    .transform(Number)
    .pipe(z.number().min(min, range).max(max, range));
};

/** A decimal number (`0.05`, `-0.5`) from `min` to `max`; as envInt, no blanks, hex or exponents. */
export const envNumber = (min: number, max: number) => {
  const range = `a number from ${min} to ${max}`;
  return z
    .string()
    .trim()
    .regex(/^-?\d+(\.\d+)?$/, `${range}, in decimal digits`)
    .transform(Number)
    .pipe(z.number().min(min, range).max(max, range));
};

/** A duration in milliseconds: at most `max`, and never more than a timer can wait (MAX_TIMER_MS). */
export const envMs = (min: number, max = MAX_TIMER_MS) =>
  envInt(min, Math.min(max, MAX_TIMER_MS), 'milliseconds', max >= MAX_TIMER_MS ? ' (about 24.8 days: the longest a timer waits)' : '');

/** A duration in seconds: at most ten years, or `max` (MAX_TIMER_SECONDS or less when it ends up in a timer). */
export const envSeconds = (min: number, max = MAX_LIFETIME_SECONDS) =>
  envInt(min, max, 'seconds', max === MAX_LIFETIME_SECONDS ? ' (ten years)' : max === MAX_TIMER_SECONDS ? ' (about 24.8 days: the longest a timer waits)' : '');

const CRON_SHAPE = 'five fields (minute hour day month weekday), or six with seconds first, UTC';

/**
 * Why `pattern` is not a cron pattern the scheduler can run, or undefined when it is one. croner parses it
 * without scheduling anything; five or six fields only, what BullMQ's parser reads too.
 */
export function cronProblem(pattern: string): string | undefined {
  const fields = pattern.trim().split(/\s+/).length;
  if (fields !== 5 && fields !== 6) return `"${pattern}" is not a cron pattern: ${CRON_SHAPE}`;
  try {
    new CronPattern(pattern, 'UTC');
  } catch (err) {
    return `"${pattern}" is not a cron pattern (${(err as Error).message.replace(/^CronPattern: /, '').replace(/\.$/, '')}): ${CRON_SHAPE}`;
  }
  // Parsed, but a date that never comes (31 February) would never fire: paused, nothing is scheduled.
  if (!new Cron(pattern, { paused: true, timezone: 'UTC' }).nextRun()) return `"${pattern}" never fires`;
  return undefined;
}

/** A cron pattern (see cronProblem). */
export const envCron = z.string().trim().superRefine((pattern, ctx) => {
  const problem = cronProblem(pattern);
  if (problem) ctx.addIssue({ code: 'custom', message: problem });
});
