import { eq, inArray } from 'drizzle-orm';
import type { Db } from '../../platform/db/database.ts';
import { erasureOf } from '../users/index.ts';
import { webhookEndpoints, webhookMessages } from './schema.ts';

/** A deleted account's webhook messages with their attempts, endpoint by endpoint (its endpoints go with the account). */
export const webhooksErasure = (db: Db) =>
  erasureOf(db, 'webhooks', {
    table: webhookMessages,
    where: (userId, on) => inArray(webhookMessages.endpointId, on.select({ id: webhookEndpoints.id }).from(webhookEndpoints).where(eq(webhookEndpoints.userId, userId))),
  });
