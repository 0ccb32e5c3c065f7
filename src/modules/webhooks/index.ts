import type { BusEvent } from '../../platform/bus/events.ts';
import { onReclaimed } from '../auth/index.ts';
import { defineModule } from '../module.ts';
import { webhooksRoutes } from './routes.ts';
import { webhookAttempts, webhookEndpoints, webhookMessages } from './schema.ts';
import { createWebhooks, DELIVER_QUEUE, type WebhookEmit, type Webhooks } from './service.ts';
import { webhookSettings, webhooksEnv, type WebhookSettings } from './settings.ts';
import { webhooksErasure } from './erasure.ts';

export type { Webhooks } from './service.ts';
export { WEBHOOK_EVENTS } from './service.ts';
/** The private-address rule, for any other fetch of a user-given URL. */
export { isLookupUnavailable, isPrivateAddress, parseWebhookUrl, resolvePublic, type AddressErrors } from './address.ts';

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

/** The webhook a domain event makes, if any. Events about a project (a conversation's) reach that project's endpoints too. */
function webhookOf(event: BusEvent): WebhookEmit | undefined {
  const p = event.payload as Record<string, any>;
  const sourceEventId = event.id;
  switch (event.type) {
    case 'message.stream.finished':
      if (p.status !== 'complete') return undefined;
      return { userId: p.userId, eventType: 'message.completed', payload: { conversationId: p.conversationId, projectId: p.projectId ?? null, messageId: p.messageId, model: p.model, usage: p.usage }, sourceEventId, projectId: p.projectId ?? null };
    case 'conversation.created':
      return { userId: p.userId, eventType: 'conversation.created', payload: { conversationId: p.conversationId, projectId: p.projectId, title: p.title }, sourceEventId, projectId: p.projectId };
    case 'notification.created':
      return { userId: p.userId, eventType: 'notification.created', payload: p.notification, sourceEventId };
    case 'file.created':
      return { userId: p.userId, eventType: 'file.ready', payload: { fileId: p.fileId, name: p.name, mimeType: p.mimeType, size: p.size }, sourceEventId };
    case 'document.saved':
      // One event per save, naming its author, whose endpoints hear of it (instances before that told each reader: the author's copy is the one).
      if (p.userId !== p.authorId) return undefined;
      return { userId: p.userId, eventType: 'document.updated', payload: { documentId: p.documentId, version: p.version }, sourceEventId };
    case 'budget.threshold': {
      if (p.percent !== 100) return undefined;
      // A project's budget is about that project.
      const projectId = p.scope === 'project' ? p.subjectId : null;
      const { userId, budgetId, scope, subjectId, period, periodKey, resetsAt, spent, limit } = p;
      return { userId, eventType: 'budget.exceeded', payload: { budgetId, scope, subjectId, projectId, period, periodKey, resetsAt, spent, limit }, sourceEventId, projectId };
    }
    case 'job.failed':
      return { userId: p.userId, eventType: 'job.failed', payload: { jobId: p.jobId, queue: p.queue, attempts: p.attempts, error: p.error, errorCode: p.errorCode ?? null }, sourceEventId };
    default:
      return undefined;
  }
}

/**
 * Webhooks: endpoints users register for events, messages signed the
 * Standard Webhooks way and delivered by queued attempts on Svix's retry
 * schedule, every attempt logged; private addresses refused at registration
 * and at delivery; an endpoint failing for days disabled; an endpoint's rate
 * limit holding deliveries back (each waits its turn, using no attempt).
 */
export const webhooksModule = defineModule({
  name: 'webhooks',
  erasure: ({ deps }) => webhooksErasure(deps.db),
  tables: { webhookEndpoints, webhookMessages, webhookAttempts },
  config: { env: webhooksEnv, read: webhookSettings },
  needs: ['jobs', 'projects'],
  // An endpoint disabled for failing is told to its owner.
  uses: ['notifications'],
  provides: ['webhooks'],
  services: ({ deps, config, services }) => ({
    // Endpoints' rate limits count in the limiter store: Redis when there is one, so they hold across every process.
    webhooks: createWebhooks({ db: deps.db, cipher: deps.cipher, jobs: services.jobs, projects: services.projects, limiters: deps.limiters, announce: deps.announce, settings: config.webhooks }),
  }),
  routes: webhooksRoutes,
  notifications: [{ name: 'webhook.disabled', description: 'A webhook endpoint of yours kept failing and was disabled.', channels: { inApp: true, email: true } }],
  jobs: ({ config, services }) => [
    // Many at once: a slow endpoint holds a slot for up to the timeout, and an attempt mostly waits (its read, the POST, its log).
    { queue: DELIVER_QUEUE, handler: (job) => services.webhooks.deliver(job), options: { concurrency: config.webhooks.concurrency, timeoutMs: config.webhooks.timeoutMs + 15_000 } },
  ],
  subscriptions: ({ deps, services }) => [
    {
      group: 'webhooks',
      types: ['message.stream.finished', 'conversation.created', 'file.created', 'document.saved', 'job.failed', 'notification.created', 'budget.threshold'],
      handler: async (event) => {
        const emit = webhookOf(event);
        if (emit) await services.webhooks.emitMany([emit]);
      },
      // Events read together make their messages together: one read, one transaction.
      batch: async (events) => {
        await services.webhooks.emitMany(events.map(webhookOf).filter((e) => e !== undefined));
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
    // A reset proved the address for the first time: endpoints registered before may be a stranger's, who would get the owner's events.
    onReclaimed('webhooks', deps.logger, 'webhook endpoints', async (userId, before) => {
      const endpointIds = await services.webhooks.deleteAllOf(userId, before);
      return endpointIds.length ? { endpointIds } : undefined;
    }),
  ],
});
