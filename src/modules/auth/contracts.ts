import { z } from 'zod';
import { optionalBody } from '../../http/pagination.ts';
import { displayName, userSchema } from '../users/index.ts';

const email = z.email().max(320);
const password = z.string().min(1).max(1024);

export const registerBody = z.object({
  email,
  password,
  name: displayName.optional(),
  /** Browser mode: set httpOnly cookies instead of returning tokens. */
  cookie: z.boolean().optional(),
});

export const loginBody = z.object({ email, password, cookie: z.boolean().optional() });

export const refreshBody = optionalBody(z.object({ refreshToken: z.string().min(1).max(512).optional(), cookie: z.boolean().optional() }));

export const logoutBody = optionalBody(z.object({ refreshToken: z.string().min(1).max(512).optional() }));

export const sessionTokens = z
  .object({
    tokenType: z.literal('Bearer'),
    accessToken: z.string().optional().describe('Absent in cookie mode'),
    refreshToken: z.string().optional().describe('Absent in cookie mode'),
    expiresIn: z.number().int().describe('Access token lifetime in seconds'),
    sessionId: z.uuid(),
    user: userSchema,
  })
  .meta({ id: 'SessionTokens' });

export const mfaChallenge = z
  .object({ mfaRequired: z.literal(true), mfaToken: z.string(), expiresIn: z.number().int() })
  .meta({ id: 'MfaChallenge' });

export const sessionSchema = z
  .object({
    id: z.uuid(),
    current: z.boolean(),
    method: z.string(),
    device: z.string().nullable().describe('User agent of the device'),
    ip: z.string().nullable(),
    createdAt: z.iso.datetime(),
    lastUsedAt: z.iso.datetime(),
    expiresAt: z.iso.datetime(),
  })
  .meta({ id: 'Session' });
