import { asc, eq } from 'drizzle-orm';
import type { Db } from '../../platform/db/database.ts';
import type { ExportSource } from '../export/index.ts';
import { notificationPreferences, notifications } from './schema.ts';

/** Every notification the user got, and the per-category, per-channel choices they made. */
export const notificationsExport = (db: Db): ExportSource => ({
  name: 'notifications',
  async write(userId, archive) {
    const [list, preferences] = await Promise.all([
      db
        .select({ id: notifications.id, category: notifications.category, title: notifications.title, body: notifications.body, markdown: notifications.markdown, link: notifications.link, data: notifications.data, priority: notifications.priority, readAt: notifications.readAt, createdAt: notifications.createdAt })
        .from(notifications)
        .where(eq(notifications.userId, userId))
        .orderBy(asc(notifications.id)),
      db
        .select({ category: notificationPreferences.category, channel: notificationPreferences.channel, enabled: notificationPreferences.enabled, updatedAt: notificationPreferences.updatedAt })
        .from(notificationPreferences)
        .where(eq(notificationPreferences.userId, userId)),
    ]);
    archive.json('notifications.json', list);
    archive.json('preferences.json', preferences);
  },
});
