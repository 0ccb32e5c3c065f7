import { z } from 'zod';

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
