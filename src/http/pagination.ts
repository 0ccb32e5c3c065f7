import { z } from 'zod';

/**
 * An opaque `?cursor=`: base64url of text that `decode` reads back into where
 * the list resumes; undefined from `decode` (a cursor this list never made) is a 400.
 */
export const opaqueCursor = <T>(decode: (text: string) => T | undefined) =>
  z
    .string()
    .max(200)
    .optional()
    .transform((c, ctx) => {
      if (c === undefined) return undefined;
      const value = decode(Buffer.from(c, 'base64url').toString('utf8'));
      if (value === undefined) {
        ctx.addIssue({ code: 'custom', message: 'invalid cursor' });
        return z.NEVER;
      }
      return value;
    });

/** `?limit=&cursor=`; the cursor is opaque to clients (the last id seen, base64url). */
export const pageQuery = z.object({
  limit: z.coerce.number().int().min(1).max(100).default(20),
  cursor: opaqueCursor((id) => (z.uuid().safeParse(id).success ? id : undefined)),
});

export const page = <T extends z.ZodType>(item: T) => z.object({ data: z.array(item), nextCursor: z.string().nullable() });

/** Builds `{data, nextCursor}` from rows fetched with `limit + 1`. */
export function toPage<R extends { id: string }, T>(rows: R[], limit: number, map: (r: R) => T) {
  const more = rows.length > limit;
  const items = more ? rows.slice(0, limit) : rows;
  return {
    data: items.map(map),
    nextCursor: more ? Buffer.from(items[items.length - 1]!.id).toString('base64url') : null,
  };
}

export const idParam = z.object({ id: z.uuid() });

/** A JSON body that may be left out entirely (no content): read as `{}`. */
export const optionalBody = <T extends z.ZodObject>(schema: T) => z.preprocess((v) => v ?? {}, schema);
