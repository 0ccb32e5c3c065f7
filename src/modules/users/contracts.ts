import { z } from 'zod';
import { optionalBody } from '../../http/pagination.ts';

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

export const updateMeBody = z.object({ name: z.string().trim().min(1).max(200).nullable() }).partial().strict();

/** Confirms an irreversible change: the password for accounts that have one. */
export const deleteMeBody = optionalBody(z.object({ password: z.string().min(1).max(1024).optional() }).strict());
