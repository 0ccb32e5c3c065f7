import { NotFound, ValidationError } from '../../errors.ts';
import type { Announce } from '../../platform/bus/bus.ts';
import type { Signer } from '../../platform/crypto/cipher.ts';
import { inTransaction, type Db } from '../../platform/db/database.ts';
import type { Mailer } from '../../platform/mail/mailer.ts';
import type { JobContext, JobQueue } from '../../platform/queue/queue.ts';
import type { NotificationCategory } from '../module.ts';
import type { UsersService } from '../users/index.ts';
import { renderEmail } from './email.ts';
import { createNotificationsRepository } from './repository.ts';
import { CHANNELS, type Channel, type DeliveryRow, type DeliveryStatus, type NotificationRow, type Priority } from './schema.ts';
import type { NotificationSettings } from './settings.ts';

export const EMAIL_QUEUE = 'notifications.email';

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
    deliveries.filter((d) => d.notificationId === n.id).map((d) => [d.channel, { status: d.status, reason: d.reason, attempts: d.attempts, updatedAt: d.updatedAt.toISOString() }]),
  ),
});

/**
 * Notifications: each one stored for its recipient, then delivered per channel (in-app at once and
 * pushed on the `notifications` topic; email by a queued job), unless the user's preferences or the
 * daily limit of its category suppress it (a `critical` one passes the limit). Knows nothing of HTTP.
 */
export function createNotifications(d: {
  db: Db;
  announce: Announce;
  queue: JobQueue;
  mailer: Mailer;
  signer: Signer;
  users: UsersService;
  settings: NotificationSettings;
  categories: NotificationCategory[];
  publicUrl: string;
}) {
  const repo = createNotificationsRepository(d.db);
  const categories = new Map<string, NotificationCategory>();
  for (const c of d.categories) categories.set(c.name, c);
  for (const name of d.settings.categories) if (!categories.has(name)) categories.set(name, { name, description: 'Sent by this deployment (NOTIFICATIONS_CATEGORIES).' });

  const category = (name: string) => {
    const c = categories.get(name);
    if (!c) throw ValidationError(`Unknown notification category "${name}" (see GET /v1/notifications/categories)`, 'unknown_category');
    return c;
  };

  /** Per channel: the user's switch for all notifications, then their choice for this category, then the category's default. */
  async function enabled(userId: string, c: NotificationCategory): Promise<Record<Channel, boolean>> {
    const [prefs, choices] = await Promise.all([d.users.preferences(userId), repo.preferences(userId)]);
    const on = {} as Record<Channel, boolean>;
    for (const channel of CHANNELS) {
      const chosen = choices.find((p) => p.category === c.name && p.channel === channel);
      on[channel] = prefs.notifications[channel] && (chosen ? chosen.enabled : (c.channels?.[channel] ?? true));
    }
    return on;
  }

  const payloadOf = (userId: string, categoryName: string) => `${userId}:${categoryName}`;
  const unsubscribeToken = (userId: string, categoryName: string) => {
    const payload = payloadOf(userId, categoryName);
    return `${Buffer.from(payload).toString('base64url')}.${d.signer.sign(payload)}`;
  };
  const unsubscribeUrl = (userId: string, categoryName: string) => `${d.publicUrl}/v1/notifications/unsubscribe?token=${encodeURIComponent(unsubscribeToken(userId, categoryName))}`;

  async function withDeliveries(rows: NotificationRow[]): Promise<NotificationView[]> {
    const deliveries = await repo.deliveries(rows.map((r) => r.id));
    return rows.map((r) => toView(r, deliveries));
  }

  return {
    categories: () => [...categories.values()],

    /** Stores a notification and delivers it on each channel the user has on (or records why not). */
    async send(input: NotificationInput): Promise<NotificationView> {
      const c = category(input.category);
      await d.users.require(input.userId);
      if (input.sourceKey) {
        const earlier = await repo.bySource(input.userId, input.sourceKey);
        if (earlier) return (await withDeliveries([earlier]))[0]!;
      }
      const on = await enabled(input.userId, c);
      const priority = input.priority ?? 'normal';
      const { row, deliveries } = await inTransaction(d.db, async (tx) => {
        const today = await repo.count(tx, input.userId, c.name);
        const overLimit = today > d.settings.dailyLimit && priority !== 'critical';
        const plan = CHANNELS.map((channel) => ({
          channel,
          status: (overLimit || !on[channel] ? 'suppressed' : channel === 'inApp' ? 'sent' : 'queued') as DeliveryStatus,
          reason: overLimit ? 'daily_limit' : !on[channel] ? 'preference' : null,
        }));
        const stored = await repo.insert(
          tx,
          {
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
          },
          plan,
        );
        const email = stored.deliveries.find((x) => x.channel === 'email' && x.status === 'queued');
        if (email) await d.queue.enqueue(EMAIL_QUEUE, { deliveryId: email.id }, { tx, userId: input.userId, attempts: 5, backoffMs: 5_000 });
        return stored;
      });
      const view = toView(row, deliveries);
      if (row.listed) d.announce('notification.created', { userId: row.userId, notification: view });
      return view;
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
      d.announce('notification.read', { userId, ids: [id] });
      return (await withDeliveries([row]))[0]!;
    },

    async markAllRead(userId: string): Promise<number> {
      const marked = await repo.markAllRead(userId);
      if (marked) d.announce('notification.read', { userId, ids: null });
      return marked;
    },

    async delete(userId: string, id: string): Promise<void> {
      if (!(await repo.delete(userId, id))) throw NotFound('Notification', 'notification_not_found');
    },

    /** Every category with whether each channel is on for this user, and whether that is their own choice. */
    async preferences(userId: string) {
      const [prefs, choices] = await Promise.all([d.users.preferences(userId), repo.preferences(userId)]);
      return [...categories.values()].map((c) => ({
        category: c.name,
        description: c.description,
        channels: Object.fromEntries(
          CHANNELS.map((channel) => {
            const chosen = choices.find((p) => p.category === c.name && p.channel === channel);
            const enabledHere = chosen ? chosen.enabled : (c.channels?.[channel] ?? true);
            return [channel, { enabled: enabledHere, default: c.channels?.[channel] ?? true, chosen: chosen !== undefined, allOff: !prefs.notifications[channel] }];
          }),
        ) as Record<Channel, { enabled: boolean; default: boolean; chosen: boolean; allOff: boolean }>,
      }));
    },

    async setPreferences(userId: string, choices: { category: string; channel: Channel; enabled: boolean }[]) {
      for (const c of choices) category(c.category);
      await repo.setPreferences(userId, choices);
    },

    unsubscribeUrl,

    /** Reads a signed unsubscribe token and turns that category's email off; throws Forbidden-like 400 for a bad token. */
    async unsubscribe(token: string): Promise<{ category: string }> {
      const dot = token.indexOf('.');
      const payload = dot > 0 ? Buffer.from(token.slice(0, dot), 'base64url').toString('utf8') : '';
      const sep = payload.indexOf(':');
      if (sep < 0 || !d.signer.verify(token.slice(dot + 1), payload)) throw ValidationError('This unsubscribe link is not valid', 'bad_signature');
      const userId = payload.slice(0, sep);
      const categoryName = payload.slice(sep + 1);
      if (!(await d.users.exists(userId))) throw NotFound('User', 'user_not_found');
      await repo.setPreferences(userId, [{ category: categoryName, channel: 'email', enabled: false }]);
      return { category: categoryName };
    },

    /** The email job: renders and hands the message to the mailer (the outbox, or SMTP's own retried queue). */
    async deliverEmail({ deliveryId }: { deliveryId: string }, ctx: JobContext): Promise<{ sent: boolean } | { skipped: string }> {
      const delivery = await repo.delivery(deliveryId);
      if (!delivery || delivery.status !== 'queued') return { skipped: 'not queued' };
      const n = await repo.byId(delivery.notificationId);
      if (!n) return { skipped: 'notification deleted' };
      const c = categories.get(n.category);
      // Unsubscribed between queueing and sending: honoured.
      if (c && !(await enabled(n.userId, c)).email) {
        await repo.setDelivery(deliveryId, { status: 'suppressed', reason: 'preference' });
        return { skipped: 'preference' };
      }
      const user = await d.users.require(n.userId);
      const url = unsubscribeUrl(n.userId, n.category);
      const mail = renderEmail(c, n, url);
      try {
        await d.mailer.send({ to: user.email, ...mail, headers: { 'List-Unsubscribe': `<${url}>`, 'List-Unsubscribe-Post': 'List-Unsubscribe=One-Click' } });
      } catch (err) {
        const last = ctx.attempt >= ctx.maxAttempts;
        await repo.setDelivery(deliveryId, { status: last ? 'failed' : 'queued', reason: String((err as Error).message).slice(0, 500), attempts: ctx.attempt });
        throw err;
      }
      await repo.setDelivery(deliveryId, { status: 'sent', reason: null, attempts: ctx.attempt });
      return { sent: true };
    },
  };
}

export type Notifications = ReturnType<typeof createNotifications>;
