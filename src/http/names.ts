import { z } from 'zod';
import { isBlank, ONE_LINE } from '../platform/text.ts';

/**
 * A name or a title as users give them and lists show them: trimmed, 1 to `max` characters, one line (no line
 * breaks or control characters, which write lines of their own, nor direction overrides, which make
 * `Invoice\u202Efdp.exe` read as `Invoice exe.pdf`: ONE_LINE), and showing something (one of invisible characters
 * only, U+200B or a Hangul filler, lists as a blank row).
 */
export const nameText = (max: number) =>
  z
    .string()
    .trim()
    .min(1)
    .max(max)
    .regex(ONE_LINE, 'one line, without control characters or direction overrides')
    .refine((t) => !isBlank(t), 'must show some text, not only spaces or invisible characters');
