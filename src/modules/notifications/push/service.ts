import type { Broadcast } from '../../../platform/broadcast/broadcast.ts';
import type { Cipher } from '../../../platform/crypto/cipher.ts';
import type { Db } from '../../../platform/db/database.ts';
import type { Logger } from '../../../platform/observability/logger.ts';
import { pushChannel } from '../channels/push.ts';
import type { PushSettings } from './settings.ts';
import { createPushSubscriptions } from './subscriptions.ts';
import { vapidKeys } from './vapid.ts';

/**
 * Web push for the notifications module: the VAPID key pair, users' browser subscriptions, and the
 * channel adapter the notifications service delivers through. The VAPID `sub` is VAPID_SUBJECT, or
 * `mailto:admin@<PUBLIC_URL's host>`.
 */
export function createWebPush(deps: { db: Db; cipher: Cipher; settings: PushSettings; publicUrl: string; broadcast: Broadcast; logger?: Logger }) {
  const vapid = vapidKeys(deps.db, deps.cipher);
  const subscriptions = createPushSubscriptions(deps);
  const subject = deps.settings.subject ?? `mailto:admin@${new URL(deps.publicUrl).hostname}`;
  return { vapid, subscriptions, subject, channel: pushChannel({ subscriptions, vapid, settings: deps.settings, subject }) };
}

export type WebPush = ReturnType<typeof createWebPush>;
