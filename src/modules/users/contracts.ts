import { z } from 'zod';
import { nameText } from '../../http/names.ts';

export const userSchema = z
  .object({
    id: z.uuid(),
    email: z.string(),
    emailVerified: z.boolean(),
    name: z.string().nullable(),
    role: z.enum(['user', 'admin']),
    disabled: z.boolean(),
    hasPassword: z.boolean(),
    createdAt: z.iso.datetime(),
    updatedAt: z.iso.datetime(),
  })
  .meta({ id: 'User' });

/**
 * What a user calls themselves: one line, for it is shown as one (and greets them in emails sent to an address
 * anyone can give at registration). Line breaks and other control characters would let it write paragraphs of its
 * own; bidirectional overrides and isolates (U+202A–U+202E, U+2066–U+2069) would reorder what follows it.
 */
export const displayName = nameText(200);

export const updateMeBody = z.object({ name: displayName.nullable() }).partial().strict();
