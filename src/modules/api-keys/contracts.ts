import { z } from 'zod';
import { LAST_INSTANT } from '../../http/dates.ts';
import { nameText } from '../../http/names.ts';
import { API_KEY_SCOPES } from './service.ts';

export const apiKeyScope = z.enum(API_KEY_SCOPES).meta({ id: 'ApiKeyScope' });

export const createApiKeyBody = z
  .object({
    // Listed as one line (the console, the audit log).
    name: nameText(100),
    scopes: z.array(apiKeyScope).max(20).optional().describe('Leave out (or empty) for all of your permissions except managing keys and sessions'),
    expiresAt: z.iso
      .datetime({ offset: true })
      .refine((at) => Date.parse(at) <= LAST_INSTANT, 'must be before the year 10000')
      .nullable()
      .optional()
      .describe('Must be in the future; null or absent for a key that does not expire'),
  })
  .strict();

/** What a key looks like once created: never the secret, only a prefix and the last four characters. */
export const apiKeySchema = z
  .object({
    id: z.uuid(),
    name: z.string(),
    prefix: z.string(),
    last4: z.string(),
    scopes: z.array(z.string()),
    expiresAt: z.iso.datetime().nullable(),
    lastUsedAt: z.iso.datetime().nullable(),
    createdAt: z.iso.datetime(),
  })
  .meta({ id: 'ApiKey' });

export const createdApiKeySchema = apiKeySchema
  .extend({ key: z.string().describe('The secret key. Shown only in this response; store it now.') })
  .meta({ id: 'CreatedApiKey' });
