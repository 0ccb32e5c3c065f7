import { z } from 'zod';

/** An on/off environment variable: `true`/`false`, `1`/`0`, `yes`/`no`. */
export const envBool = z.enum(['true', 'false', '1', '0', 'yes', 'no']).transform((v) => v === 'true' || v === '1' || v === 'yes');

/** A comma-separated list, blanks dropped. */
export const envList = z.string().transform((v) => v.split(',').map((s) => s.trim()).filter(Boolean));

/**
 * A whole number from `min` to `max`, in decimal digits. Not `z.coerce.number()`: Number() reads a
 * blank as 0, and takes `0x10` and `1e3`, none of which an operator means as a count.
 */
export const envInt = (min: number, max: number) => {
  const range = `a whole number from ${min} to ${max}`;
  return z
    .string()
    .trim()
    .regex(/^\d+$/, `${range}, in decimal digits`)
    .transform(Number)
    .pipe(z.number().min(min, range).max(max, range));
};
