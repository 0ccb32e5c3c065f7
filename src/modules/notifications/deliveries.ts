import { inTransaction, type Db } from '../../platform/db/database.ts';
import type { Mailer } from '../../platform/mail/mailer.ts';
import { FinalJobError, type JobContext, type JobQueue } from '../../platform/queue/queue.ts';
import { clip, oneLine, storableText } from '../../platform/text.ts';
import type { NotificationCategory } from '../module.ts';
import type { Usage } from '../usage/index.ts';
import type { Preferences, UserRow, UsersService } from '../users/index.ts';
import { RetryLater, Undeliverable, type ChannelAdapter } from './channels/channel.ts';
import { permanentRefusal } from './channels/email.ts';
import { renderDigest, type DigestPeriod } from './email.ts';
import { ACCOUNT_DISABLED, type NotificationsRepository } from './repository.ts';
import type { Channel, NotificationRow, OutboundChannel } from './schema.ts';
import { lastDigestSlot } from './timing.ts';

/** One queue per outbound channel, so each has its own concurrency: `notifications.email`, `notifications.push`, … */
export const queueOf = (channel: OutboundChannel) => `notifications.${channel}`;
export const DIGEST_QUEUE = 'notifications.digest-email';
/** Tries per delivery, the first included; waits between them 5 s, 10 s, 20 s, 40 s unless the service says how long. */
export const MAX_ATTEMPTS = 5;
const backoffMs = (attempt: number) => 5_000 * 2 ** (attempt - 1);
/** Why a delivery to an account deleted since (its erasure under way) is not made: its rows go with the rest. */
const RECIPIENT_DELETED = 'recipient_deleted';
/**
 * A delivery's (or a digest's) job is system work, owned by no user: its outcome is on the delivery. Were it the
 * user's, a dead one would announce `job.failed`, itself a notification that emails them, held into the next
 * digest to the same refusing mailbox, and so on once per digest period.
 */
export const DELIVERY_JOB = { userId: null, attempts: MAX_ATTEMPTS, backoffMs: 5_000 } as const;
/** A notification as every outbound channel gets it: its title one line, as an email subject or a message's first line must be. */
const outbound = (n: NotificationRow): NotificationRow => ({ ...n, title: oneLine(n.title) });

/**
 * Outbound delivery: one job per delivery and channel, through the channel's adapter, retried with
 * backoff (or after the service's `Retry-After`) and recorded on the delivery; and the digest, which
 * bundles a user's held emails into one at their chosen time. Every outbound delivery, sent or failed,
 * is metered in usage (source `notification`, provider: the channel, model: the category).
 */
export function createDeliveries(deps: {
  db: Db;
  queue: JobQueue;
  mailer: Mailer;
  users: UsersService;
  usage: Usage;
  repo: NotificationsRepository;
  adapters: Map<OutboundChannel, ChannelAdapter>;
  categories: Map<string, NotificationCategory>;
  unsubscribeUrl(userId: string, category: string, channel?: OutboundChannel): string;
  publicUrl: string;
  /** Per channel, whether the user has this category on there, and the preferences that said so. */
  enabled(userId: string, c: NotificationCategory): Promise<{ on: Record<Channel, boolean>; prefs: Preferences }>;
}) {
  const { repo } = deps;

  function meter(n: NotificationRow, channel: OutboundChannel, status: 'ok' | 'failed', latencyMs: number) {
    // Priced at 0 (what a channel's provider charges is the operator's), so reports do not count them as unpriced.
    deps.usage.recorder.record({ userId: n.userId, source: 'notification', provider: channel, model: n.category, latencyMs, status, costMicros: 0 });
  }

  /** The recipient as channels see them, with their preferences (read here unless the caller has them already). */
  async function recipientOf(user: UserRow, known?: Preferences) {
    const prefs = known ?? (await deps.users.preferences(user.id));
    return { recipient: { id: user.id, email: user.email, name: user.name, locale: prefs.locale, timezone: prefs.timezone }, prefs };
  }

  /**
   * The recipient's account as a delivery finds it when it runs, in the one read of their row it makes (the same
   * row names the recipient to the channel): null with why, when nothing may be sent. Deleted: its rows go with the
   * rest. Disabled by an administrator: the owner cannot sign in to act on anything sent (a critical notice
   * included); the administrator who disabled the account can. Checked here rather than only when the
   * notification was made: an account disabled while a delivery waited (queued, held for quiet hours or a
   * digest, retrying) is sent nothing, and one enabled again gets what is made from then on.
   */
  async function liveAccount(userId: string): Promise<{ user: UserRow } | { user: null; why: string }> {
    const user = await deps.users.byId(userId);
    if (!user) return { user: null, why: RECIPIENT_DELETED };
    return user.disabledAt ? { user: null, why: ACCOUNT_DISABLED } : { user };
  }

  return {
    meter,

    /** A delivery's job: sends it once through its channel's adapter; a failure schedules the next try as a new job, so a 429's wait is honoured. */
    async deliver({ deliveryId }: { deliveryId: string }, ctx: JobContext) {
      const delivery = await repo.delivery(deliveryId);
      const due = delivery && (delivery.status === 'queued' || (delivery.status === 'held' && delivery.reason === 'quiet_hours'));
      if (!delivery || !due || delivery.channel === 'inApp') return { skipped: 'not queued' };
      const channel = delivery.channel;
      const n = await repo.byId(delivery.notificationId);
      if (!n) return { skipped: 'notification deleted' };
      const adapter = deps.adapters.get(channel);
      if (!adapter) {
        await repo.setDelivery(deliveryId, { status: 'failed', reason: `the ${channel} channel is no longer configured` });
        return { skipped: 'not configured' };
      }
      const account = await liveAccount(n.userId);
      if (!account.user) {
        await repo.setDelivery(deliveryId, { status: 'suppressed', reason: account.why });
        return { skipped: account.why };
      }
      const category = deps.categories.get(n.category);
      // Turned off, or no longer reachable, between queueing and sending: honoured.
      const choice = category && (await deps.enabled(n.userId, category));
      if (choice && !choice.on[channel]) {
        await repo.setDelivery(deliveryId, { status: 'suppressed', reason: 'preference' });
        return { skipped: 'preference' };
      }
      const unreachable = await adapter.unreachable(n.userId);
      if (unreachable) {
        await repo.setDelivery(deliveryId, { status: 'suppressed', reason: `unreachable: ${unreachable}` });
        return { skipped: unreachable };
      }
      const attempt = delivery.attempts + 1;
      // Counted before the call: a worker killed mid-send still used the try (the job runs again: at least once).
      await repo.setDelivery(deliveryId, { status: 'queued', reason: delivery.reason === 'quiet_hours' ? null : delivery.reason, attempts: attempt });
      const started = Date.now();
      try {
        const done = await adapter.deliver({ deliveryId, notification: outbound(n), category, recipient: (await recipientOf(account.user, choice ? choice.prefs : undefined)).recipient, unsubscribeUrl: deps.unsubscribeUrl(n.userId, n.category, channel), attempt, signal: ctx.signal });
        await repo.setDelivery(deliveryId, { status: done.status, reason: null, externalId: done.externalId ?? null });
        meter(n, channel, 'ok', Date.now() - started);
        return { status: done.status };
      } catch (err) {
        // Often a provider's own words: stored as text PostgreSQL takes, cut whole.
        const reason = clip(storableText(String((err as Error).message)), 500);
        if (err instanceof Undeliverable || attempt >= MAX_ATTEMPTS) {
          await repo.setDelivery(deliveryId, { status: 'failed', reason });
          meter(n, channel, 'failed', Date.now() - started);
          return { failed: reason };
        }
        const delayMs = err instanceof RetryLater ? err.delayMs : backoffMs(attempt);
        await inTransaction(deps.db, async (tx) => {
          await repo.setDelivery(deliveryId, { status: 'queued', reason }, tx);
          await deps.queue.enqueue(queueOf(channel), { deliveryId }, { ...DELIVERY_JOB, tx, delayMs, idempotencyKey: `${deliveryId}:${attempt + 1}` });
        });
        return { retryInMs: delayMs };
      }
    },

    /**
     * The `notifications.digest` schedule: each user with held emails whose digest time (daily, or weekly on
     * their day, in their time zone) came after the oldest of them gets one digest of everything held. The
     * held deliveries are claimed in the transaction that queues the digest, so two firings never send one twice.
     */
    async sendDueDigests(now = new Date()): Promise<number> {
      let queued = 0;
      for (const { userId, oldest } of await repo.heldDigests()) {
        // A deleted account's held emails wait for its erasure; the others' digests go on.
        if (!(await deps.users.exists(userId))) continue;
        const prefs = await deps.users.preferences(userId);
        // A user who turned digests off gets what was held at once.
        const slot = prefs.notifications.digest === 'off' ? now : lastDigestSlot(now, prefs.timezone, prefs.notifications);
        if (!slot || slot < oldest) continue;
        await inTransaction(deps.db, async (tx) => {
          const ids = await repo.claimDigest(tx, userId);
          if (!ids.length) return;
          await deps.queue.enqueue(DIGEST_QUEUE, { userId, deliveryIds: ids, period: prefs.notifications.digest }, { ...DELIVERY_JOB, tx, idempotencyKey: `digest:${userId}:${slot.toISOString()}` });
          queued++;
        });
      }
      return queued;
    },

    /** The digest email's job: one message listing what was held, with a link that turns notification emails off. */
    async deliverDigest({ userId, deliveryIds, period }: { userId: string; deliveryIds: string[]; period?: DigestPeriod }, ctx: JobContext) {
      const held = await repo.digestItems(deliveryIds);
      if (!held.length) return { skipped: 'nothing held' };
      const account = await liveAccount(userId);
      if (!account.user) {
        for (const i of held) await repo.setDelivery(i.deliveryId, { status: 'suppressed', reason: account.why });
        return { skipped: account.why };
      }
      // Turned off since it was held (its category's email, or notification emails altogether, as the digest's own
      // link does): suppressed, as a single delivery is when it comes to be sent.
      const known = await deps.users.preferences(userId);
      const emailOn = new Map<string, boolean>();
      const items: typeof held = [];
      for (const i of held) {
        const name = i.notification.category;
        if (!emailOn.has(name)) {
          const category = deps.categories.get(name);
          emailOn.set(name, category ? (await deps.enabled(userId, category)).on.email : known.notifications.email);
        }
        if (emailOn.get(name)) items.push(i);
        else await repo.setDelivery(i.deliveryId, { status: 'suppressed', reason: 'preference' });
      }
      if (!items.length) return { skipped: 'preference' };
      const { recipient, prefs } = await recipientOf(account.user, known);
      const url = deps.unsubscribeUrl(userId, '*');
      // The setting that sent it (off: what was held when digests were turned off); a job queued before it was kept, the current one.
      const mail = renderDigest(items.map((i) => outbound(i.notification)), { period: period ?? prefs.notifications.digest, publicUrl: deps.publicUrl, unsubscribeUrl: url });
      const started = Date.now();
      try {
        await deps.mailer.sendNow({ to: recipient.email, ...mail, headers: { 'List-Unsubscribe': `<${url}>`, 'List-Unsubscribe-Post': 'List-Unsubscribe=One-Click' } });
      } catch (err) {
        const refused = permanentRefusal(err);
        const last = refused !== null || ctx.attempt >= ctx.maxAttempts;
        const reason = `digest: ${clip(storableText(refused ?? String((err as Error).message)), 480)}`;
        for (const i of items) {
          // Still queued for this digest (its job retries) until the last try; each item shows the tries made.
          await repo.setDelivery(i.deliveryId, last ? { status: 'failed', reason, attempts: ctx.attempt } : { status: 'queued', reason: 'digest', attempts: ctx.attempt });
          if (last) meter(i.notification, 'email', 'failed', Date.now() - started);
        }
        // A refusal no retry changes (550: no such mailbox) ends the job now, dead for an administrator to see.
        throw refused ? new FinalJobError(refused, { cause: err }) : err;
      }
      for (const i of items) {
        await repo.setDelivery(i.deliveryId, { status: 'sent', reason: 'digest', attempts: ctx.attempt });
        meter(i.notification, 'email', 'ok', Date.now() - started);
      }
      return { sent: items.length };
    },
  };
}
