import { index, pgTable, text, uuid } from 'drizzle-orm/pg-core';
import { createdAt, id, time } from '../../../platform/db/columns.ts';
import { users } from '../../users/index.ts';

/**
 * The deployment's VAPID key pair (RFC 8292), made once: browsers bind each subscription to its public key
 * (`applicationServerKey`), so a new pair would orphan every subscription. The private key is encrypted.
 */
export const pushVapidKeys = pgTable('push_vapid_keys', {
  id: id(),
  /** Uncompressed P-256 point, base64url: what browsers take as `applicationServerKey`. */
  publicKey: text('public_key').notNull(),
  privateKeyEnc: text('private_key_enc').notNull(),
  createdAt: createdAt(),
});

/**
 * One browser (device) a user gets web push on. The endpoint URL is a capability (whoever has it can push to
 * that browser), so it and the keys are kept encrypted; `endpointHash` finds a re-registered one.
 */
export const pushSubscriptions = pgTable(
  'push_subscriptions',
  {
    id: id(),
    userId: uuid('user_id').notNull().references(() => users.id, { onDelete: 'cascade' }),
    /** SHA-256 (hex) of the endpoint URL: one row per browser subscription, whoever registered it last. */
    endpointHash: text('endpoint_hash').notNull().unique(),
    /** The push service's host (fcm.googleapis.com, updates.push.services.mozilla.com), shown in lists. */
    pushService: text('push_service').notNull(),
    /** `{endpoint, p256dh, auth}` as JSON, encrypted with the endpoint hash as context. */
    secretEnc: text('secret_enc').notNull(),
    label: text('label'),
    /** The browser's `expirationTime`: not sent to after it. */
    expiresAt: time('expires_at'),
    lastSentAt: time('last_sent_at'),
    createdAt: createdAt(),
    updatedAt: time('updated_at').notNull().defaultNow(),
  },
  (t) => [index('push_subscriptions_user_idx').on(t.userId, t.updatedAt)],
);

export type PushSubscriptionRow = typeof pushSubscriptions.$inferSelect;
