import { sql } from 'drizzle-orm';
import { boolean, date, index, integer, jsonb, pgTable, primaryKey, text, unique, uniqueIndex, uuid } from 'drizzle-orm/pg-core';
import { createdAt, id, time } from '../../platform/db/columns.ts';
import { users } from '../users/index.ts';

export const PRIORITIES = ['low', 'normal', 'high', 'critical'] as const;
export type Priority = (typeof PRIORITIES)[number];
export const CHANNELS = ['inApp', 'email'] as const;
export type Channel = (typeof CHANNELS)[number];
export type DeliveryStatus = 'queued' | 'sent' | 'failed' | 'suppressed';

/** One notification to one user; `listed` when its in-app delivery went through (what the inbox shows). */
export const notifications = pgTable(
  'notifications',
  {
    id: id(),
    userId: uuid('user_id').notNull().references(() => users.id, { onDelete: 'cascade' }),
    category: text('category').notNull(),
    title: text('title').notNull(),
    body: text('body').notNull(),
    markdown: text('markdown'),
    link: text('link'),
    data: jsonb('data').$type<Record<string, unknown>>().notNull().default({}),
    priority: text('priority', { enum: PRIORITIES }).notNull().default('normal'),
    listed: boolean('listed').notNull().default(false),
    /** What it was made from (a bus event and recipient), so a redelivered event does not notify twice. */
    sourceKey: text('source_key'),
    readAt: time('read_at'),
    createdAt: createdAt(),
  },
  (t) => [index('notifications_user_idx').on(t.userId, t.id), index('notifications_unread_idx').on(t.userId).where(sql`${t.listed} and ${t.readAt} is null`),
    uniqueIndex('notifications_source_uq').on(t.userId, t.sourceKey),
  ],
);

export type NotificationRow = typeof notifications.$inferSelect;

/** A notification's fate on one channel: queued, sent, failed (`reason`: the last error) or suppressed (`reason`: preference, daily_limit). */
export const notificationDeliveries = pgTable(
  'notification_deliveries',
  {
    id: id(),
    notificationId: uuid('notification_id').notNull().references(() => notifications.id, { onDelete: 'cascade' }),
    channel: text('channel', { enum: CHANNELS }).notNull(),
    status: text('status').$type<DeliveryStatus>().notNull(),
    reason: text('reason'),
    attempts: integer('attempts').notNull().default(0),
    createdAt: createdAt(),
    updatedAt: time('updated_at').notNull().defaultNow(),
    sentAt: time('sent_at'),
  },
  (t) => [unique('notification_deliveries_channel_uq').on(t.notificationId, t.channel)],
);

export type DeliveryRow = typeof notificationDeliveries.$inferSelect;

/** A user's choice for one category on one channel, where it differs from the category's default. */
export const notificationPreferences = pgTable(
  'notification_preferences',
  {
    userId: uuid('user_id').notNull().references(() => users.id, { onDelete: 'cascade' }),
    category: text('category').notNull(),
    channel: text('channel', { enum: CHANNELS }).notNull(),
    enabled: boolean('enabled').notNull(),
    updatedAt: time('updated_at').notNull().defaultNow(),
  },
  (t) => [primaryKey({ columns: [t.userId, t.category, t.channel] })],
);

/** Notifications of one category a user got on one day (UTC), for the daily limit. */
export const notificationCounters = pgTable(
  'notification_counters',
  {
    userId: uuid('user_id').notNull().references(() => users.id, { onDelete: 'cascade' }),
    category: text('category').notNull(),
    day: date('day').notNull(),
    count: integer('count').notNull(),
  },
  (t) => [primaryKey({ columns: [t.userId, t.category, t.day] })],
);
