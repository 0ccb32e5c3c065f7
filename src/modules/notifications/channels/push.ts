import webpush from 'web-push';
import { isPrivate, postToPushService } from '../push/transport.ts';
import type { PushSubscriptions, PushTarget } from '../push/subscriptions.ts';
import type { PushSettings } from '../push/settings.ts';
import type { VapidKeys } from '../push/vapid.ts';
import type { NotificationRow, Priority } from '../schema.ts';
import { clip } from '../../../platform/text.ts';
import { retryAfterMs, RetryLater, Undeliverable, type ChannelAdapter } from './channel.ts';

/** A push service keeps an undelivered message this long (the device may be off). */
export const PUSH_TTL_SECONDS = 24 * 3600;
/** The most plaintext one aes128gcm record holds within the 4096-byte body push services accept (RFC 8291: 4096 − 86 header − 16 tag − 1 delimiter). */
export const MAX_PAYLOAD_BYTES = 3993;
/** RFC 8030 Urgency: a device saving battery still wakes for `high`. */
const URGENCY: Record<Priority, webpush.Urgency> = { low: 'low', normal: 'normal', high: 'high', critical: 'high' };

const bytes = (s: string) => Buffer.byteLength(s);
/** The first `end` characters and an ellipsis, never splitting a surrogate pair. */
const cut = (s: string, end: number) => clip(s, end) + '…';

/** The longest cut of `p[field]` with which `p` still fits (a binary search: characters take 1 to 6 bytes once in JSON). */
function trim<T extends Record<string, unknown>>(p: T, field: keyof T & string) {
  const text = p[field] as string;
  let [lo, hi] = [0, text.length - 1];
  while (lo < hi) {
    const mid = Math.ceil((lo + hi) / 2);
    if (bytes(JSON.stringify({ ...p, [field]: cut(text, mid) })) <= MAX_PAYLOAD_BYTES) lo = mid;
    else hi = mid - 1;
  }
  (p as Record<string, unknown>)[field] = cut(text, lo);
}

/** The JSON a service worker's `push` event reads: the notification, its data dropped and then its body, title and link trimmed to fit one record. */
export function pushPayload(n: Pick<NotificationRow, 'id' | 'title' | 'body' | 'link' | 'category' | 'data' | 'priority'>): string {
  const p: { id: string; title: string; body: string; link: string | null; category: string; priority: Priority; data?: Record<string, unknown> } = {
    id: n.id,
    title: n.title,
    body: n.body,
    link: n.link,
    category: n.category,
    priority: n.priority,
    data: Object.keys(n.data).length ? n.data : undefined,
  };
  const fits = () => bytes(JSON.stringify(p)) <= MAX_PAYLOAD_BYTES;
  // What does not fit goes in this order: the data (the client can fetch the notification by id), the body, the title, the link.
  if (!fits()) p.data = undefined;
  if (!fits()) trim(p, 'body');
  if (!fits()) trim(p, 'title');
  if (!fits()) p.link = null;
  return JSON.stringify(p);
}

type Outcome =
  | { kind: 'sent'; target: PushTarget; location: string | null }
  | { kind: 'gone' | 'refused' | 'transient'; target: PushTarget; why: string; delayMs?: number };

/**
 * Web push (RFC 8030) with VAPID (RFC 8292) and aes128gcm payloads (RFC 8291), made by the `web-push`
 * library and posted by Parley's own client (checked address, timeout, abort). Every browser of the user is
 * sent to at once: one taking it is enough ('sent'); a 404 or 410 removes that subscription; a 429 (or a
 * 503) with Retry-After asks for a later try; other 4xx fail the delivery only when every browser refused.
 */
export function pushChannel(deps: { subscriptions: PushSubscriptions; vapid: VapidKeys; settings: PushSettings; subject: string }): ChannelAdapter {
  async function sendTo(target: PushTarget, payload: string, urgency: webpush.Urgency, signal: AbortSignal): Promise<Outcome> {
    const keys = await deps.vapid.get();
    const request = webpush.generateRequestDetails({ endpoint: target.endpoint, keys: target.keys }, payload, {
      vapidDetails: { subject: deps.subject, publicKey: keys.publicKey, privateKey: keys.privateKey },
      TTL: PUSH_TTL_SECONDS,
      urgency,
      contentEncoding: 'aes128gcm',
    });
    const name = target.label ? `${target.label} (${target.pushService})` : target.pushService;
    let res;
    try {
      res = await postToPushService({ endpoint: request.endpoint, headers: request.headers as Record<string, string>, body: request.body, allowPrivate: deps.settings.allowPrivate, timeoutMs: deps.settings.timeoutMs, signal });
    } catch (err) {
      // An endpoint that now resolves to a private address stays refused; a network error or a timeout may pass.
      return { kind: isPrivate(err) ? 'refused' : 'transient', target, why: `${name}: ${(err as Error).message}` };
    }
    const said = `${name}: HTTP ${res.status}${res.excerpt ? ` ${res.excerpt.replace(/\s+/g, ' ').slice(0, 120)}` : ''}`;
    if (res.status >= 200 && res.status < 300) return { kind: 'sent', target, location: typeof res.headers.location === 'string' ? res.headers.location : null };
    if (res.status === 404 || res.status === 410) return { kind: 'gone', target, why: `${said} (subscription expired or unsubscribed; removed)` };
    const delayMs = retryAfterMs(res.headers['retry-after'] as string | undefined);
    if (res.status === 429 || res.status >= 500) return { kind: 'transient', target, why: said, delayMs };
    return { kind: 'refused', target, why: said };
  }

  return {
    channel: 'push',
    concurrency: 8,
    unreachable: async (userId) => ((await deps.subscriptions.any(userId)) ? null : 'no_push_subscription'),
    async deliver({ notification, signal }) {
      const targets = await deps.subscriptions.targets(notification.userId);
      if (!targets.length) throw new Undeliverable('no push subscription left');
      const payload = pushPayload(notification);
      const outcomes = await Promise.all(targets.map((t) => sendTo(t, payload, URGENCY[notification.priority], signal)));
      const sent = outcomes.filter((o) => o.kind === 'sent');
      await deps.subscriptions.remove(notification.userId, outcomes.filter((o) => o.kind === 'gone').map((o) => o.target.id));
      if (sent.length) {
        await deps.subscriptions.sent(sent.map((o) => o.target.id));
        return { status: 'sent', externalId: sent[0]!.location };
      }
      const failures = outcomes as Exclude<Outcome, { kind: 'sent' }>[];
      const why = failures.map((o) => o.why).join('; ');
      const transient = failures.filter((o) => o.kind === 'transient');
      if (!transient.length) throw new Undeliverable(`every push subscription failed: ${why}`);
      const waits = transient.map((o) => o.delayMs).filter((ms): ms is number => ms !== undefined);
      if (waits.length) throw new RetryLater(why, Math.max(...waits));
      throw new Error(why);
    },
  };
}
