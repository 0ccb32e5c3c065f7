import { createPublicKey } from 'node:crypto';
import { NotFound, ValidationError } from '../../../errors.ts';
import { sha256Hex, type Cipher } from '../../../platform/crypto/cipher.ts';
import type { Broadcast } from '../../../platform/broadcast/broadcast.ts';
import { createBroadcastCache } from '../../../platform/broadcast/cache.ts';
import type { Db } from '../../../platform/db/database.ts';
import type { Logger } from '../../../platform/observability/logger.ts';
import { createPushRepository } from './repository.ts';
import type { PushSubscriptionRow } from './schema.ts';
import type { PushSettings } from './settings.ts';
import { checkEndpoint, parseEndpoint } from './transport.ts';

/** A user's browsers beyond this many: the least recently registered ones make room. */
export const MAX_SUBSCRIPTIONS_PER_USER = 20;

/** What a browser's `PushSubscription.toJSON()` gives, and a name for the device. */
export interface SubscriptionInput {
  endpoint: string;
  keys: { p256dh: string; auth: string };
  expirationTime?: number | null;
  label?: string | null;
}

/** What is sent to: only the adapter sees it. */
export interface PushTarget {
  id: string;
  label: string | null;
  pushService: string;
  endpoint: string;
  keys: { p256dh: string; auth: string };
}

export interface SubscriptionView {
  id: string;
  label: string | null;
  pushService: string;
  /** The endpoint with its secret part hidden: enough to tell devices apart, not to push to one. */
  endpointHint: string;
  expiresAt: string | null;
  lastSentAt: string | null;
  createdAt: string;
  updatedAt: string;
}

const BASE64URL = /^[A-Za-z0-9_-]+={0,2}$/;

/** Decodes base64url (browsers' form; padded base64url tolerated) strictly: anything else is refused, not skipped. */
function decodeKey(value: string, name: string): Buffer {
  if (!BASE64URL.test(value)) throw ValidationError(`keys.${name} is not base64url`, 'push_key_invalid');
  return Buffer.from(value.replace(/=+$/, ''), 'base64url');
}

/** p256dh must be an uncompressed point on P-256 (65 bytes, 0x04 first); auth 16 bytes (RFC 8291). */
export function checkKeys(keys: { p256dh: string; auth: string }): void {
  const point = decodeKey(keys.p256dh, 'p256dh');
  if (point.length !== 65 || point[0] !== 0x04) throw ValidationError('keys.p256dh must be an uncompressed P-256 public key (65 bytes, base64url)', 'push_key_invalid');
  try {
    createPublicKey({ key: { kty: 'EC', crv: 'P-256', x: point.subarray(1, 33).toString('base64url'), y: point.subarray(33).toString('base64url') }, format: 'jwk' });
  } catch {
    throw ValidationError('keys.p256dh is not a point on the P-256 curve', 'push_key_invalid');
  }
  if (decodeKey(keys.auth, 'auth').length !== 16) throw ValidationError('keys.auth must be a 16-byte secret (base64url)', 'push_key_invalid');
}

const hint = (endpoint: URL) => {
  const path = endpoint.pathname;
  return `${endpoint.origin}${path.length > 12 ? `${path.slice(0, Math.min(path.lastIndexOf('/') + 1, 24))}…${path.slice(-4)}` : '/…'}`;
};

/**
 * Users' browser push subscriptions: registered from the browser's PushSubscription (checked: an https
 * endpoint on a public address, a real P-256 key and a 16-byte auth secret), listed with the endpoint
 * hidden, deleted by their owner, and removed when the push service says they are gone.
 */
export function createPushSubscriptions(deps: { db: Db; cipher: Cipher; settings: PushSettings; broadcast: Broadcast; logger?: Logger }) {
  const repo = createPushRepository(deps.db);
  // Whether a user has a browser to push to: asked on every notification sent, so kept per user until a
  // subscription of theirs changes or the first of them expires.
  const reachable = createBroadcastCache({
    broadcast: deps.broadcast,
    topic: 'notifications.push-reachable',
    load: (userId) => repo.live(userId),
    expiresAt: (live) => live.until,
    logger: deps.logger,
  });
  /** Removes subscriptions of this user (gone, expired or over the limit). */
  async function remove(userId: string, ids: string[]) {
    if (!ids.length) return;
    await repo.remove(ids);
    await reachable.forget(userId);
  }
  const context = (endpointHash: string) => `push-subscription:${endpointHash}`;

  const view = (row: PushSubscriptionRow, endpoint: string): SubscriptionView => ({
    id: row.id,
    label: row.label,
    pushService: row.pushService,
    endpointHint: hint(new URL(endpoint)),
    expiresAt: row.expiresAt?.toISOString() ?? null,
    lastSentAt: row.lastSentAt?.toISOString() ?? null,
    createdAt: row.createdAt.toISOString(),
    updatedAt: row.updatedAt.toISOString(),
  });
  const open = (row: PushSubscriptionRow) => JSON.parse(deps.cipher.decrypt(row.secretEnc, context(row.endpointHash)).toString('utf8')) as { endpoint: string; p256dh: string; auth: string };

  return {
    /** Registers a browser, or updates it when its endpoint is known (a re-subscription, or another user signed in on it). */
    async register(userId: string, input: SubscriptionInput): Promise<{ subscription: SubscriptionView; created: boolean }> {
      const url = parseEndpoint(input.endpoint, deps.settings.allowPrivate);
      checkKeys(input.keys);
      const expiresAt = input.expirationTime == null ? null : new Date(Math.round(input.expirationTime));
      if (expiresAt && expiresAt.getTime() <= Date.now()) throw ValidationError('This subscription has already expired (expirationTime)', 'push_subscription_expired');
      await checkEndpoint(url, deps.settings.allowPrivate);
      const endpointHash = sha256Hex(url.href);
      const secret = JSON.stringify({ endpoint: url.href, p256dh: input.keys.p256dh.replace(/=+$/, ''), auth: input.keys.auth.replace(/=+$/, '') });
      const { row, created, previousUserId } = await repo.upsert({ userId, endpointHash, pushService: url.host, secretEnc: deps.cipher.encrypt(secret, context(endpointHash)), label: input.label ?? null, expiresAt });
      const all = await repo.list(userId);
      if (all.length > MAX_SUBSCRIPTIONS_PER_USER) {
        const oldest = all.filter((r) => r.id !== row.id).sort((a, b) => a.updatedAt.getTime() - b.updatedAt.getTime());
        await repo.remove(oldest.slice(0, all.length - MAX_SUBSCRIPTIONS_PER_USER).map((r) => r.id));
      }
      await Promise.all([reachable.forget(userId), previousUserId && previousUserId !== userId && reachable.forget(previousUserId)]);
      return { subscription: view(row, url.href), created };
    },

    async list(userId: string): Promise<SubscriptionView[]> {
      return (await repo.list(userId)).map((row) => view(row, open(row).endpoint));
    },

    async delete(userId: string, id: string): Promise<void> {
      if (!(await repo.delete(userId, id))) throw NotFound('Push subscription', 'push_subscription_not_found');
      await reachable.forget(userId);
    },

    /** Removes every browser of the user registered before `before`; returns their ids. Forgets the user's reachability even when none was left (a retry after a crash). */
    async removeAllOf(userId: string, before: Date): Promise<string[]> {
      const ids = await repo.deleteAllOf(userId, before);
      await reachable.forget(userId);
      return ids;
    },

    /** Whether the user has a browser to push to. */
    async any(userId: string): Promise<boolean> {
      return (await reachable.get(userId)).count > 0;
    },

    /** The user's browsers, decrypted, for sending; expired ones are removed instead. */
    async targets(userId: string): Promise<PushTarget[]> {
      const rows = await repo.list(userId);
      const now = Date.now();
      const expired = rows.filter((r) => r.expiresAt && r.expiresAt.getTime() <= now);
      await remove(userId, expired.map((r) => r.id));
      return rows
        .filter((r) => !expired.includes(r))
        .map((r) => {
          const s = open(r);
          return { id: r.id, label: r.label, pushService: r.pushService, endpoint: s.endpoint, keys: { p256dh: s.p256dh, auth: s.auth } };
        });
    },

    /** The push service said these of the user's are gone (404, 410). */
    remove,
    sent: (ids: string[]) => repo.sent(ids),
  };
}

export type PushSubscriptions = ReturnType<typeof createPushSubscriptions>;
