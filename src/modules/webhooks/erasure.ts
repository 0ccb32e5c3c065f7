import { eq, inArray } from 'drizzle-orm';
import { deleteSome } from '../../platform/db/batches.ts';
import type { Db } from '../../platform/db/database.ts';
import type { ErasureSource } from '../users/index.ts';
import { webhookEndpoints, webhookMessages } from './schema.ts';

/** A deleted account's webhook messages with their attempts, endpoint by endpoint (its endpoints go with the account). */
export const webhooksErasure = (db: Db): ErasureSource => ({
  name: 'webhooks',
  erase: (userId, limit) =>
    deleteSome(db, webhookMessages, inArray(webhookMessages.endpointId, db.select({ id: webhookEndpoints.id }).from(webhookEndpoints).where(eq(webhookEndpoints.userId, userId))), limit),
});
