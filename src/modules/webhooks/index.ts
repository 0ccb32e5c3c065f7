import { defineModule } from '../module.ts';
import { webhooksRoutes } from './routes.ts';
import { webhookAttempts, webhookEndpoints, webhookMessages } from './schema.ts';
import { createWebhooks, DELIVER_QUEUE, type Webhooks } from './service.ts';
import { webhookSettings, webhooksEnv, type WebhookSettings } from './settings.ts';

export type { Webhooks } from './service.ts';
export { WEBHOOK_EVENTS } from './service.ts';
/** The private-address rule, for any other fetch of a user-given URL. */
export { isPrivateAddress, parseWebhookUrl, resolvePublic } from './address.ts';

declare module '../../platform/bus/events.ts' {
  interface DomainEvents {
    /** An endpoint failed for the whole window (5 days by default) and was disabled: told to its owner. */
    'webhook.endpoint.disabled': { userId: string; endpointId: string; url: string; failingSince: string };
  }
}

declare module '../module.ts' {
  interface ServiceMap {
    /** Endpoints, messages and their delivery. */
    webhooks: Webhooks;
  }
  interface ModuleSettings {
    /** Private addresses allowed, timeout, retry scale, the disable window, attempts at once. */
    webhooks: WebhookSettings;
  }
}

/**
 * Webhooks: endpoints users register for events, messages signed the
 * Standard Webhooks way and delivered by queued attempts on Svix's retry
 * schedule, every attempt logged; private addresses refused at registration
 * and at delivery; an endpoint failing for days disabled.
 */
export const webhooksModule = defineModule({
  name: 'webhooks',
  tables: { webhookEndpoints, webhookMessages, webhookAttempts },
  config: { env: webhooksEnv, read: webhookSettings },
  needs: ['jobs', 'projects'],
  // An endpoint disabled for failing is told to its owner.
  uses: ['notifications'],
  provides: ['webhooks'],
  services: ({ deps, config, services }) => ({
    webhooks: createWebhooks({ db: deps.db, cipher: deps.cipher, jobs: services.jobs, projects: services.projects, announce: deps.announce, settings: config.webhooks }),
  }),
  routes: webhooksRoutes,
  notifications: [{ name: 'webhook.disabled', description: 'A webhook endpoint of yours kept failing and was disabled.', channels: { inApp: true, email: true } }],
  jobs: ({ config, services }) => [
    // Many at once: a slow endpoint holds a slot for up to the timeout, and an attempt mostly waits (its read, the POST, its log).
    { queue: DELIVER_QUEUE, handler: (job) => services.webhooks.deliver(job), options: { concurrency: config.webhooks.concurrency, timeoutMs: config.webhooks.timeoutMs + 15_000 } },
  ],
  subscriptions: ({ services }) => [
    {
      group: 'webhooks',
      types: ['message.stream.finished', 'conversation.created', 'file.created', 'document.saved', 'job.failed', 'notification.created', 'budget.threshold'],
      handler: async (event) => {
        const { webhooks } = services;
        const p = event.payload as Record<string, any>;
        // Events about a project (a conversation's) reach that project's endpoints too.
        if (event.type === 'message.stream.finished' && p.status === 'complete')
          await webhooks.emit(p.userId, 'message.completed', { conversationId: p.conversationId, projectId: p.projectId ?? null, messageId: p.messageId, model: p.model, usage: p.usage }, event.id, p.projectId ?? null);
        else if (event.type === 'conversation.created')
          await webhooks.emit(p.userId, 'conversation.created', { conversationId: p.conversationId, projectId: p.projectId, title: p.title }, event.id, p.projectId);
        else if (event.type === 'notification.created') await webhooks.emit(p.userId, 'notification.created', p.notification, event.id);
        else if (event.type === 'file.created') await webhooks.emit(p.userId, 'file.ready', { fileId: p.fileId, name: p.name, mimeType: p.mimeType, size: p.size }, event.id);
        // Told once per reader: the author's copy is enough.
        else if (event.type === 'document.saved' && p.userId === p.authorId) await webhooks.emit(p.userId, 'document.updated', { documentId: p.documentId, version: p.version }, event.id);
        else if (event.type === 'budget.threshold' && p.percent === 100) {
          // A project's budget is about that project.
          const projectId = p.scope === 'project' ? p.subjectId : null;
          const { userId, budgetId, scope, subjectId, period, periodKey, resetsAt, spent, limit } = p;
          await webhooks.emit(userId, 'budget.exceeded', { budgetId, scope, subjectId, projectId, period, periodKey, resetsAt, spent, limit }, event.id, projectId);
        } else if (event.type === 'job.failed') await webhooks.emit(p.userId, 'job.failed', { jobId: p.jobId, queue: p.queue, attempts: p.attempts, error: p.error }, event.id);
      },
    },
    {
      group: 'webhooks.notify',
      types: ['webhook.endpoint.disabled'],
      async handler(event) {
        if (event.type !== 'webhook.endpoint.disabled') return;
        const { userId, endpointId, url, failingSince } = event.payload;
        await services.notifications.send({
          userId,
          category: 'webhook.disabled',
          title: 'A webhook endpoint was disabled',
          body: `Deliveries to ${url} failed since ${failingSince}, so the endpoint was disabled: nothing more is sent to it. Fix the receiver, then enable it again (PATCH it with "disabled": false) and replay what it missed.`,
          link: `/webhooks/endpoints/${endpointId}`,
          data: { endpointId, url, failingSince },
          priority: 'high',
          sourceKey: event.id,
        });
      },
    },
  ],
});
