import type { JobContext } from '../../platform/queue/queue.ts';
import { oneLine } from '../../platform/text.ts';
import { onReclaimed } from '../auth/index.ts';
import { defineModule } from '../module.ts';
import { notificationsFootprint } from './footprint.ts';
import { notificationRoutes } from './routes.ts';
import { notificationCounters, notificationDeliveries, notificationPhones, notificationPreferences, notifications, notificationSlackDestinations } from './schema.ts';
import { emailChannel } from './channels/email.ts';
import { createSlack, type Slack } from './channels/slack.ts';
import { slackRoutes } from './channels/slack-routes.ts';
import { createSms, type Sms } from './channels/sms.ts';
import { smsRoutes } from './channels/sms-routes.ts';
import { pushRoutes } from './push/routes.ts';
import { pushSubscriptions, pushVapidKeys } from './push/schema.ts';
import { createWebPush, type WebPush } from './push/service.ts';
import { pushEnv, pushSettings, type PushSettings } from './push/settings.ts';
import { DIGEST_QUEUE, queueOf } from './deliveries.ts';
import { createNotifications, type NotificationView, type Notifications } from './service.ts';
import { notificationSettings, notificationsEnv, type NotificationSettings } from './settings.ts';
import { notificationsExport } from './export.ts';
import { notificationsErasure } from './erasure.ts';
import { forgetDestinations } from './reclaim.ts';

export type { Notifications, NotificationInput, NotificationView } from './service.ts';

declare module '../../platform/bus/events.ts' {
  interface DomainEvents {
    /** A notification reached `userId`'s inbox (its in-app channel). */
    'notification.created': { userId: string; notification: NotificationView };
    /** Notifications of `userId` were marked read: these `ids`, or all of them (null). */
    'notification.read': { userId: string; ids: string[] | null };
  }
}

declare module '../module.ts' {
  interface ServiceMap {
    /** Sending (categories, per-user preferences, the daily limit), the inbox, email delivery, unsubscribe links. */
    notifications: Notifications;
    /** The SMS channel's verified phone numbers (null: no SMS on this deployment) and the Slack channel's destinations. */
    notificationChannels: { sms: Sms | null; slack: Slack };
    /** Web push: the VAPID key, users' browser subscriptions, the push channel; null when PUSH_ENABLED=false. */
    webPush: WebPush | null;
  }
  interface ModuleSettings {
    /** Daily limit per category, the deployment's own categories. */
    notifications: NotificationSettings & { push: PushSettings };
  }
}

/**
 * Notifications: categories declared by modules (their `notifications`) and by the deployment, sent to the
 * in-app inbox (live on the `notifications` topic), by email (a queued job, with one-click unsubscribe), by web
 * push to the user's browsers (push/: VAPID key, subscriptions), by SMS to a verified number (when configured)
 * and to Slack (a user's incoming webhook, or the bot), per user and category × channel, within a daily limit
 * per category, held through quiet hours or into digests. Documents' shares and mentions become
 * notifications here, from their events.
 */
export const notificationsModule = defineModule({
  name: 'notifications',
  erasure: ({ deps }) => notificationsErasure(deps.db),
  exports: ({ deps }) => notificationsExport(deps.db),
  tables: { notifications, notificationDeliveries, notificationPreferences, notificationCounters, notificationPhones, notificationSlackDestinations, pushSubscriptions, pushVapidKeys },
  config: { env: { ...notificationsEnv, ...pushEnv }, read: (e) => ({ ...notificationSettings(e), push: pushSettings(e) }) },
  needs: ['users', 'usage'],
  provides: ['notifications', 'notificationChannels', 'webPush'],
  services: ({ deps, config, services, notificationCategories }) => {
    // SMS only with a provider configured; Slack always (incoming webhooks need no setting; a bot token adds member and channel ids); web push unless PUSH_ENABLED=false.
    const sms = config.notifications.sms && createSms({ db: deps.db, settings: config.notifications.sms, signer: deps.signer('notifications.sms-code'), limiters: deps.limiters, publicUrl: config.publicUrl });
    const slack = createSlack({ db: deps.db, cipher: deps.cipher, settings: config.notifications.slack, allowPrivate: config.webhooks.allowPrivate, publicUrl: config.publicUrl });
    const webPush = config.notifications.push.enabled ? createWebPush({ db: deps.db, cipher: deps.cipher, settings: config.notifications.push, publicUrl: config.publicUrl, broadcast: deps.broadcast, logger: deps.logger }) : null;
    return {
      notifications: createNotifications({
        db: deps.db,
        announce: deps.announce,
        queue: deps.queue,
        mailer: deps.mailer,
        signer: deps.signer('notifications.unsubscribe'),
        users: services.users,
        usage: services.usage,
        settings: config.notifications,
        categories: notificationCategories,
        // Each outbound channel is a port (channels/channel.ts) with its adapter; email is always there.
        channels: [emailChannel({ mailer: deps.mailer, publicUrl: config.publicUrl, verifiedOnly: config.auth.requireEmailVerification, users: services.users }), ...(webPush ? [webPush.channel] : []), ...(sms ? [sms.adapter] : []), slack.adapter],
        publicUrl: config.publicUrl,
        broadcast: deps.broadcast,
        logger: deps.logger,
      }),
      notificationChannels: { sms, slack },
      webPush,
    };
  },
  notifications: [{ name: 'system.message', description: 'Messages from the operators of this service.' }],
  routes: async (app, ctx) => {
    await notificationRoutes(app, ctx);
    await smsRoutes(app, ctx);
    slackRoutes(app, ctx);
    await pushRoutes(app, ctx);
  },
  footprint: notificationsFootprint,
  jobs: ({ services }) => [
    ...[...services.notifications.adapters.values()].map((adapter) => ({
      queue: queueOf(adapter.channel),
      handler: (data: { deliveryId: string }, ctx: JobContext) => services.notifications.deliver(data, ctx),
      options: { concurrency: adapter.concurrency ?? 4, timeoutMs: 60_000 },
    })),
    { queue: DIGEST_QUEUE, handler: (data, ctx) => services.notifications.deliverDigest(data, ctx), options: { concurrency: 2, timeoutMs: 60_000 } },
  ],
  schedules: ({ services, config }) => [{ name: 'notifications.digest', cron: config.notifications.digestCron, handler: async () => ({ queued: await services.notifications.sendDueDigests() }) }],
  subscriptions: ({ deps, services }) => [
    // A reset proved the address for the first time: a browser, phone or Slack set up before may be a stranger's, who would get the owner's notifications.
    onReclaimed('notifications', deps.logger, 'notification destinations', async (userId, before) => {
      const forgotten = await forgetDestinations({ db: deps.db, webPush: services.webPush }, userId, before);
      return forgotten.pushSubscriptions.length || forgotten.phone || forgotten.slack ? { ...forgotten } : undefined;
    }),
    {
      group: 'notifications',
      types: ['document.shared', 'comment.created'],
      async handler(event) {
        if (event.type === 'document.shared') {
          const { userId, documentId, role, sharedBy } = event.payload;
          if (userId === sharedBy) return;
          // Quoted in the body as well as the title: one line there too, its direction overrides dropped.
          const title = oneLine(event.payload.title);
          await services.notifications.send({
            userId,
            category: 'document.shared',
            title: `"${title}" was shared with you`,
            body: `You can now ${role === 'viewer' ? 'read' : role === 'commenter' ? 'read and comment on' : 'edit'} "${title}".`,
            link: `/documents/${documentId}`,
            data: { documentId, role, sharedBy },
            sourceKey: event.id,
          });
        } else if (event.type === 'comment.created') {
          const { userId: authorId, documentId, commentId, mentions } = event.payload;
          for (const userId of new Set(mentions)) {
            if (userId === authorId) continue;
            await services.notifications.send({
              userId,
              category: 'comment.mention',
              title: 'You were mentioned in a comment',
              body: 'Someone mentioned you in a comment on a document you can read.',
              link: `/documents/${documentId}#comment-${commentId}`,
              data: { documentId, commentId, authorId },
              sourceKey: event.id,
            });
          }
        }
      },
    },
  ],
  topics: () => ({
    topics: [{ name: 'notifications', scope: 'notifications' }],
    events: ['notification.created', 'notification.read'],
    route: (type) => (type.startsWith('notification.') ? ['notifications'] : []),
  }),
});
