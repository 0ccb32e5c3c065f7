import { z } from 'zod';

/** An on/off environment variable: `true`/`false`, `1`/`0`, `yes`/`no`. */
export const envBool = z.enum(['true', 'false', '1', '0', 'yes', 'no']).transform((v) => v === 'true' || v === '1' || v === 'yes');

/** A comma-separated list, blanks dropped. */
export const envList = z.string().transform((v) => v.split(',').map((s) => s.trim()).filter(Boolean));
