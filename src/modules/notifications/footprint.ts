import { sql } from 'drizzle-orm';
import type { FootprintSource } from '../usage/index.ts';
import { notifications } from './schema.ts';

/** What notifications keep for their recipient: their text and data (suppressed ones included, until deleted). */
export const notificationsFootprint: FootprintSource[] = [
  {
    name: 'notifications',
    from: sql`${notifications}`,
    userId: notifications.userId,
    bytes: sql`octet_length(${notifications.title}) + octet_length(${notifications.body}) + coalesce(octet_length(${notifications.markdown}), 0) + octet_length(${notifications.data}::text)`,
  },
];
