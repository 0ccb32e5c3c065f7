import { AppError, NotFound, ValidationError } from '../../errors.ts';
import type { Broadcast } from '../../platform/broadcast/broadcast.ts';
import { createBroadcastCache } from '../../platform/broadcast/cache.ts';
import type { Announce } from '../../platform/bus/bus.ts';
import type { Signer } from '../../platform/crypto/cipher.ts';
import { inTransaction, type Db } from '../../platform/db/database.ts';
import type { Mailer } from '../../platform/mail/mailer.ts';
import type { Logger } from '../../platform/observability/logger.ts';
import type { JobQueue } from '../../platform/queue/queue.ts';
import type { NotificationCategory } from '../module.ts';
import type { Usage } from '../usage/index.ts';
import type { UsersService } from '../users/index.ts';
import type { ChannelAdapter } from './channels/channel.ts';
import { createDeliveries, DELIVERY_JOB, queueOf } from './deliveries.ts';
import { checkTemplates, missingVariables } from './email.ts';
import { createNotificationsRepository } from './repository.ts';
import { type Channel, type DeliveryRow, type DeliveryStatus, type NotificationRow, type OutboundChannel, type Priority } from './schema.ts';
import type { NotificationSettings } from './settings.ts';
import { quietUntil } from './timing.ts';

/** A channel's default for a category that does not say: SMS and Slack cost money or attention, so they are chosen per category; push follows email. */
const CHANNEL_DEFAULT: Record<Channel, boolean> = { inApp: true, email: true, push: true, sms: false, slack: false };
export const channelDefault = (c: NotificationCategory, channel: Channel): boolean =>
  c.channels?.[channel] ?? (channel === 'push' ? (c.channels?.email ?? CHANNEL_DEFAULT.push) : CHANNEL_DEFAULT[channel]);

export interface NotificationInput {
  userId: string;
  category: string;
  title: string;
  body?: string;
  markdown?: string | null;
  link?: string | null;
  data?: Record<string, unknown>;
  priority?: Priority;
  /** What it was made from (`<event id>`): a second send with the same key for the same user returns the first. */
  sourceKey?: string;
}

export interface ChannelStatus {
  status: DeliveryStatus;
  reason: string | null;
  attempts: number;
  updatedAt: string;
  /** held: when it is due to go out (the end of quiet hours, the digest's time). */
  heldUntil: string | null;
}

export interface NotificationView {
  id: string;
  category: string;
  title: string;
  body: string;
  markdown: string | null;
  link: string | null;
  data: Record<string, unknown>;
  priority: Priority;
  readAt: string | null;
  createdAt: string;
  channels: Partial<Record<Channel, ChannelStatus>>;
}

const toView = (n: NotificationRow, deliveries: DeliveryRow[]): NotificationView => ({
  id: n.id,
  category: n.category,
  title: n.title,
  body: n.body,
  markdown: n.markdown,
  link: n.link,
  data: n.data,
  priority: n.priority,
  readAt: n.readAt?.toISOString() ?? null,
  createdAt: n.createdAt.toISOString(),
  channels: Object.fromEntries(
    deliveries.filter((d) => d.notificationId === n.id).map((d) => [d.channel, { status: d.status, reason: d.reason, attempts: d.attempts, updatedAt: d.updatedAt.toISOString(), heldUntil: d.heldUntil?.toISOString() ?? null }]),
  ),
});

/**
 * Notifications: each one stored for its recipient, then delivered per channel: in-app at once (pushed on
 * the `notifications` topic), every other channel by a queued job through its adapter (deliveries.ts).
 * The user's preferences, their reachability on a channel and the daily limit of its category suppress
 * it; quiet hours hold it until they end; a digest holds its email for the next digest. A `critical`
 * one passes limits, quiet hours and digests. An account an administrator disabled is sent nothing, on any
 * channel, critical ones included (`account_disabled`, checked again when each delivery runs). Knows nothing of HTTP.
 */
export function createNotifications(deps: {
  db: Db;
  announce: Announce;
  queue: JobQueue;
  mailer: Mailer;
  signer: Signer;
  users: UsersService;
  usage: Usage;
  settings: NotificationSettings;
  categories: NotificationCategory[];
  /** The outbound channels this deployment has (email always; push, SMS and Slack when configured). */
  channels: ChannelAdapter[];
  publicUrl: string;
  broadcast: Broadcast;
  logger?: Logger;
}) {
  const repo = createNotificationsRepository(deps.db);
  // A user's choices per category and channel: read on every send, so kept per user until they change.
  const choicesOf = createBroadcastCache({
    broadcast: deps.broadcast,
    topic: 'notifications.preferences',
    load: (userId) => repo.preferences(userId),
    logger: deps.logger,
  });
  async function setChoices(userId: string, choices: { category: string; channel: Channel; enabled: boolean }[]) {
    await repo.setPreferences(userId, choices);
    await choicesOf.forget(userId);
  }
  // A module's template that Mustache cannot read stops the start here, not each send that uses it.
  checkTemplates(deps.categories);
  const categories = new Map<string, NotificationCategory>();
  for (const c of deps.categories) categories.set(c.name, c);
  // The deployment's own categories; one a module declares too keeps the module's and takes the deployment's wording and defaults.
  for (const c of deps.settings.categories) categories.set(c.name, { ...categories.get(c.name), ...c });
  const adapters = new Map<OutboundChannel, ChannelAdapter>(deps.channels.map((a) => [a.channel, a]));
  /** The channels of this deployment, in-app first. */
  const channels: Channel[] = ['inApp', ...adapters.keys()];

  const category = (name: string) => {
    const c = categories.get(name);
    if (!c) throw ValidationError(`Unknown notification category "${name}" (see GET /v1/notifications/categories)`, 'unknown_category');
    return c;
  };

  /** Per channel: the user's switch for all notifications, then their choice for this category, then the category's default. */
  async function enabled(userId: string, c: NotificationCategory) {
    const [prefs, choices] = await Promise.all([deps.users.preferences(userId), choicesOf.get(userId)]);
    const on = {} as Record<Channel, boolean>;
    for (const channel of channels) {
      const chosen = choices.find((p) => p.category === c.name && p.channel === channel);
      on[channel] = prefs.notifications[channel] && (chosen ? chosen.enabled : channelDefault(c, channel));
    }
    return { on, prefs };
  }

  const unsubscribeToken = (userId: string, categoryName: string, channel: OutboundChannel) => {
    const payload = channel === 'email' ? `${userId}:${categoryName}` : `${userId}:${categoryName}:${channel}`;
    return `${Buffer.from(payload).toString('base64url')}.${deps.signer.sign(payload)}`;
  };
  const unsubscribeUrl = (userId: string, categoryName: string, channel: OutboundChannel = 'email') =>
    `${deps.publicUrl}/v1/notifications/unsubscribe?token=${encodeURIComponent(unsubscribeToken(userId, categoryName, channel))}`;

  /** What a signed unsubscribe token names (`*`: every category), changing nothing; a token not signed here is 400 `bad_signature`. */
  function readUnsubscribeToken(token: string): { userId: string; category: string; channel: OutboundChannel } {
    const dot = token.indexOf('.');
    const payload = dot > 0 ? Buffer.from(token.slice(0, dot), 'base64url').toString('utf8') : '';
    const [userId, category, channel = 'email'] = payload.split(':');
    if (!userId || !category || !deps.signer.verify(token.slice(dot + 1), payload) || !adapters.has(channel as OutboundChannel)) throw ValidationError('This unsubscribe link is not valid', 'bad_signature');
    return { userId, category, channel: channel as OutboundChannel };
  }

  async function withDeliveries(rows: NotificationRow[]): Promise<NotificationView[]> {
    const deliveries = await repo.deliveries(rows.map((r) => r.id));
    return rows.map((r) => toView(r, deliveries));
  }

  const deliveries = createDeliveries({ ...deps, repo, adapters, categories, unsubscribeUrl, enabled });

  const service = {
    categories: () => [...categories.values()],
    /** The channels this deployment delivers on. */
    channels: () => [...channels],
    adapters,

    /** Stores a notification and delivers it on each channel the user has on (or records why not, or holds it). */
    async send(input: NotificationInput): Promise<NotificationView> {
      const c = category(input.category);
      const missing = missingVariables(c, input.data ?? {});
      if (missing.length) throw ValidationError(`The "${c.name}" email template needs ${missing.map((m) => `data.${m}`).join(', ')}`, 'missing_template_variable');
      if (input.sourceKey) {
        const earlier = await repo.bySource(input.userId, input.sourceKey);
        if (earlier) return (await withDeliveries([earlier]))[0]!;
      }
      // Reads the user: one that does not exist is a 404 here.
      const { on, prefs } = await enabled(input.userId, c);
      const priority = input.priority ?? 'normal';
      const critical = priority === 'critical';
      const unreachable = new Map<OutboundChannel, string | null>();
      await Promise.all([...adapters.values()].filter((a) => on[a.channel]).map(async (a) => unreachable.set(a.channel, await a.unreachable(input.userId))));
      const now = new Date();
      const quietEnd = critical ? null : quietUntil(now, prefs.timezone, prefs.notifications.quietHours);
      const digest = !critical && prefs.notifications.digest !== 'off';
      // What each channel gets under the day's limit; the insert counts the send and, over the limit, stores
      // every delivery suppressed instead (one statement: the common case, nothing to queue, is one round trip).
      const plan = channels.map((channel) => {
        const plain = (status: DeliveryStatus, reason: string | null = null, heldUntil: Date | null = null) => ({ channel, status, reason, heldUntil });
        if (!on[channel]) return plain('suppressed', 'preference');
        if (channel === 'inApp') return plain('sent');
        const why = unreachable.get(channel);
        if (why) return plain('suppressed', `unreachable: ${why}`);
        if (channel === 'email' && digest) return plain('held', 'digest');
        if (quietEnd) return plain('held', 'quiet_hours', quietEnd);
        return plain('queued');
      });
      const values = {
        userId: input.userId,
        category: c.name,
        title: input.title,
        body: input.body ?? '',
        markdown: input.markdown ?? null,
        link: input.link ?? null,
        data: input.data ?? {},
        priority,
        listed: plan.some((p) => p.channel === 'inApp' && p.status === 'sent'),
        sourceKey: input.sourceKey ?? null,
      };
      /** Made by a queued job: due now, or at the end of quiet hours. */
      const queued = <D extends { channel: Channel; status: DeliveryStatus; reason: string | null }>(d: D): d is D & { channel: OutboundChannel } =>
        d.channel !== 'inApp' && (d.status === 'queued' || d.reason === 'quiet_hours');
      const limit = critical ? null : deps.settings.dailyLimit;
      const { row, deliveries: stored } = !plan.some(queued)
        ? await repo.insert(deps.db, values, plan, limit)
        : await inTransaction(deps.db, async (tx) => {
            // A delivery and the job that makes it: neither without the other.
            const result = await repo.insert(tx, values, plan, limit);
            for (const d of result.deliveries.filter(queued)) {
              const delayMs = d.heldUntil ? Math.max(0, d.heldUntil.getTime() - now.getTime()) : undefined;
              await deps.queue.enqueue(queueOf(d.channel), { deliveryId: d.id }, { ...DELIVERY_JOB, tx, delayMs, priority: critical ? 0 : 1 });
            }
            return result;
          });
      const view = toView(row, stored);
      if (row.listed) deps.announce('notification.created', { userId: row.userId, notification: view });
      return view;
    },

    /**
     * As send, for a module's notice of what happened to a user (an answer ready, a budget used up, a job that
     * failed): nothing, rather than a 404, when that user deleted their account meanwhile (its rows await their
     * erasure). A handler that threw would be retried, then dead-lettered, for someone who is gone.
     */
    async notify(input: NotificationInput): Promise<NotificationView | undefined> {
      try {
        return await service.send(input);
      } catch (err) {
        if (err instanceof AppError && err.code === 'user_not_found') return undefined;
        throw err;
      }
    },

    async list(userId: string, opts: { limit: number; cursor?: string; unread?: boolean }) {
      return withDeliveries(await repo.list(userId, opts));
    },

    unreadCount: (userId: string) => repo.unreadCount(userId),

    async get(userId: string, id: string): Promise<NotificationView> {
      const row = await repo.get(userId, id);
      if (!row) throw NotFound('Notification', 'notification_not_found');
      return (await withDeliveries([row]))[0]!;
    },

    /** Any user's notification: for its sender, who was allowed to send it. */
    async view(id: string): Promise<NotificationView> {
      const row = await repo.byId(id);
      if (!row) throw NotFound('Notification', 'notification_not_found');
      return (await withDeliveries([row]))[0]!;
    },

    async markRead(userId: string, id: string): Promise<NotificationView> {
      const row = await repo.markRead(userId, id);
      if (!row) throw NotFound('Notification', 'notification_not_found');
      deps.announce('notification.read', { userId, ids: [id] });
      return (await withDeliveries([row]))[0]!;
    },

    async markAllRead(userId: string): Promise<number> {
      const marked = await repo.markAllRead(userId);
      if (marked) deps.announce('notification.read', { userId, ids: null });
      return marked;
    },

    async delete(userId: string, id: string): Promise<void> {
      if (!(await repo.delete(userId, id))) throw NotFound('Notification', 'notification_not_found');
    },

    /** Every category with whether each channel is on for this user, and whether that is their own choice. */
    async preferences(userId: string) {
      const [prefs, choices] = await Promise.all([deps.users.preferences(userId), choicesOf.get(userId)]);
      return [...categories.values()].map((c) => ({
        category: c.name,
        description: c.description,
        channels: Object.fromEntries(
          channels.map((channel) => {
            const chosen = choices.find((p) => p.category === c.name && p.channel === channel);
            const enabledHere = chosen ? chosen.enabled : channelDefault(c, channel);
            return [channel, { enabled: enabledHere, default: channelDefault(c, channel), chosen: chosen !== undefined, allOff: !prefs.notifications[channel] }];
          }),
        ) as Partial<Record<Channel, { enabled: boolean; default: boolean; chosen: boolean; allOff: boolean }>>,
      }));
    },

    async setPreferences(userId: string, choices: { category: string; channel: Channel; enabled: boolean }[]) {
      for (const c of choices) {
        category(c.category);
        if (!channels.includes(c.channel)) throw ValidationError(`The ${c.channel} channel is not configured on this deployment`, 'channel_not_configured');
      }
      await setChoices(userId, choices);
    },

    unsubscribeUrl,

    readUnsubscribeToken,

    /** Reads a signed unsubscribe token and turns that category off on its channel (email for links made before channels had their own). */
    async unsubscribe(token: string): Promise<{ category: string; channel: OutboundChannel }> {
      const { userId, category, channel } = readUnsubscribeToken(token);
      if (!(await deps.users.exists(userId))) throw NotFound('User', 'user_not_found');
      // A digest's link: every notification email stops (the account's own emails still go).
      if (category === '*') await deps.users.updatePreferences(userId, { notifications: { [channel]: false } });
      else await setChoices(userId, [{ category, channel, enabled: false }]);
      return { category, channel };
    },

    /** A queued delivery's job: see deliveries.ts. */
    deliver: deliveries.deliver,
    /** Bundles the held emails of every user whose digest time has come (the `notifications.digest` schedule). */
    sendDueDigests: deliveries.sendDueDigests,
    deliverDigest: deliveries.deliverDigest,
  };
  return service;
}

export type Notifications = ReturnType<typeof createNotifications>;
