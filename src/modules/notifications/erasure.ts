import { eq } from 'drizzle-orm';
import { deleteSome } from '../../platform/db/batches.ts';
import type { Db } from '../../platform/db/database.ts';
import type { ErasureSource } from '../users/index.ts';
import { notifications } from './schema.ts';

/** A deleted account's notifications, with their deliveries (foreign keys). */
export const notificationsErasure = (db: Db): ErasureSource => ({
  name: 'notifications',
  erase: (userId, limit) => deleteSome(db, notifications, eq(notifications.userId, userId), limit),
});
