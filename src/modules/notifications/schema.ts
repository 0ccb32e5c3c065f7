import { sql } from 'drizzle-orm';
import { boolean, date, index, integer, jsonb, pgTable, primaryKey, text, unique, uniqueIndex, uuid } from 'drizzle-orm/pg-core';
import { createdAt, id, time } from '../../platform/db/columns.ts';
import { users } from '../users/index.ts';

export const PRIORITIES = ['low', 'normal', 'high', 'critical'] as const;
export type Priority = (typeof PRIORITIES)[number];
export const CHANNELS = ['inApp', 'email', 'push', 'sms', 'slack'] as const;
export type Channel = (typeof CHANNELS)[number];
/** The channels a queued job delivers to (in-app is stored and pushed at once). */
export type OutboundChannel = Exclude<Channel, 'inApp'>;
export const OUTBOUND_CHANNELS = CHANNELS.filter((c): c is OutboundChannel => c !== 'inApp');
/**
 * queued: a job will deliver it; held: waiting for quiet hours to end (`quiet_hours`) or for the digest (`digest`);
 * sent: handed to the channel's service; delivered: the service confirmed it reached the device or person;
 * failed: every attempt failed (`reason`: the last error); suppressed: not sent (`preference`, `daily_limit`, `unreachable: …`,
 * `account_disabled`, `recipient_deleted`).
 */
export const DELIVERY_STATUSES = ['queued', 'held', 'sent', 'delivered', 'failed', 'suppressed'] as const;
export type DeliveryStatus = (typeof DELIVERY_STATUSES)[number];

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
    /** held: when it is due (the end of quiet hours); null for a digest, which goes at the user's digest time. */
    heldUntil: time('held_until'),
    /** The channel service's id for what it sent (a push message, an SMS, a Slack ts), when it gives one. */
    externalId: text('external_id'),
  },
  (t) => [
    unique('notification_deliveries_channel_uq').on(t.notificationId, t.channel),
    // The digest finds what it holds per user without reading every delivery.
    index('notification_deliveries_held_idx').on(t.status, t.reason).where(sql`${t.status} = 'held'`),
    // A channel's receipt (an SMS status callback) finds its delivery by the service's id.
    index('notification_deliveries_external_idx').on(t.channel, t.externalId).where(sql`${t.externalId} is not null`),
  ],
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

/**
 * A user's phone number for SMS (one per user), usable once a code sent to it was entered. While a code is
 * pending `codeMac` holds its keyed MAC (never the code), until `codeExpiresAt` or `codeTries` wrong entries.
 */
export const notificationPhones = pgTable('notification_phones', {
  userId: uuid('user_id').primaryKey().references(() => users.id, { onDelete: 'cascade' }),
  /** E.164: +14155550100. */
  phone: text('phone').notNull(),
  verifiedAt: time('verified_at'),
  codeMac: text('code_mac'),
  codeExpiresAt: time('code_expires_at'),
  codeTries: integer('code_tries').notNull().default(0),
  createdAt: createdAt(),
  updatedAt: time('updated_at').notNull().defaultNow(),
});

export type PhoneRow = typeof notificationPhones.$inferSelect;

/**
 * Where a user's Slack notifications go (one per user): an incoming webhook (its URL encrypted, a secret)
 * or, with the deployment's bot token, a member or channel id for chat.postMessage.
 */
export const notificationSlackDestinations = pgTable('notification_slack_destinations', {
  userId: uuid('user_id').primaryKey().references(() => users.id, { onDelete: 'cascade' }),
  kind: text('kind', { enum: ['webhook', 'channel'] }).notNull(),
  webhookUrlEnc: text('webhook_url_enc'),
  /** What GET shows of the webhook URL: its origin and the last 4 characters. */
  webhookHint: text('webhook_hint'),
  channel: text('channel'),
  createdAt: createdAt(),
  updatedAt: time('updated_at').notNull().defaultNow(),
});

export type SlackDestinationRow = typeof notificationSlackDestinations.$inferSelect;

// Web push's tables live beside its code; re-exported so the migrations (generated from each module's schema.ts) include them.
export { pushSubscriptions, pushVapidKeys } from './push/schema.ts';
