import { eq } from 'drizzle-orm';
import type { Db } from '../../platform/db/database.ts';
import { erasureOf } from '../users/index.ts';
import { notifications } from './schema.ts';

/** A deleted account's notifications, with their deliveries (foreign keys). */
export const notificationsErasure = (db: Db) => erasureOf(db, 'notifications', { table: notifications, where: (userId) => eq(notifications.userId, userId) });
