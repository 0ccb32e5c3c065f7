import type { FastifyRequest } from 'fastify';
import { z } from 'zod';
import { Forbidden } from '../../errors.ts';
import { principal } from '../../http/guards.ts';
import { idempotencyHeaders, idempotencyOf } from '../../http/idempotency.ts';
import { idParam, page, toPage } from '../../http/pagination.ts';
import { problemSchema } from '../../http/problem.ts';
import type { App } from '../../http/types.ts';
import { escapeHtml } from '../../platform/text.ts';
import type { RouteContext } from '../module.ts';
import { channelDefault } from './service.ts';
import { categorySchema, listQuery, notificationSchema, preferencesBody, preferencesResponse, sendBody, unsubscribeQuery } from './contracts.ts';

const problems = { 400: problemSchema, 401: problemSchema, 403: problemSchema, 404: problemSchema };
const tags = ['notifications'];

const CHANNEL_NOUN = { email: 'emails', push: 'push notifications', sms: 'text messages', slack: 'Slack messages' } as const;
const page_ = (title: string, inner: string) =>
  `<!doctype html><html><head><meta charset="utf-8"><meta name="viewport" content="width=device-width"><title>${title}</title></head>` +
  `<body style="font-family:system-ui,sans-serif;max-width:480px;margin:48px auto;line-height:1.5"><h1 style="font-size:20px">${title}</h1>${inner}</body></html>`;

/** The inbox, preferences, categories, sending (admins and `notifications:send` keys) and one-click unsubscribe. API keys need the `notifications` scope. */
export async function notificationRoutes(app: App, { services, guards, idempotency }: RouteContext<'notifications'>) {
  const { notifications } = services;
  const onRequest = guards.user({ scope: 'notifications' });
  const me = (request: FastifyRequest) => principal(request).userId;

  app.get('/notifications', {
    schema: { tags, summary: 'Your notifications, newest first', querystring: listQuery, response: { 200: page(notificationSchema), ...problems } },
    onRequest,
    handler: async (request) => {
      const { limit, cursor, unread } = request.query;
      return toPage(await notifications.list(me(request), { limit: limit + 1, cursor, unread }), limit, (n) => n);
    },
  });

  app.get('/notifications/unread-count', {
    schema: { tags, summary: 'How many of your notifications are unread', response: { 200: z.object({ count: z.number().int() }), ...problems } },
    onRequest,
    handler: async (request) => ({ count: await notifications.unreadCount(me(request)) }),
  });

  app.get('/notifications/categories', {
    schema: { tags, summary: 'The categories modules and the deployment declare', response: { 200: z.object({ data: z.array(categorySchema) }), ...problems } },
    onRequest,
    handler: async () => ({
      data: notifications.categories().map((c) => ({ name: c.name, description: c.description, channels: Object.fromEntries(notifications.channels().map((ch) => [ch, channelDefault(c, ch)])) })),
    }),
  });

  app.get('/notifications/preferences', {
    schema: { tags, summary: 'Your choices per category and channel', response: { 200: preferencesResponse, ...problems } },
    onRequest,
    handler: async (request) => ({ data: await notifications.preferences(me(request)) }),
  });

  app.put('/notifications/preferences', {
    schema: { tags, summary: 'Turn categories on or off per channel', description: 'Only the pairs named change; the answer is every category.', body: preferencesBody, response: { 200: preferencesResponse, ...problems } },
    onRequest,
    handler: async (request) => {
      await notifications.setPreferences(me(request), request.body.preferences);
      return { data: await notifications.preferences(me(request)) };
    },
  });

  app.post('/notifications', {
    schema: {
      tags,
      summary: 'Send a notification to a user',
      description:
        'For administrators: signed in, or with an API key that has the `notifications:send` scope. The answer says what happened on each channel. ' +
        'A retry with the same `Idempotency-Key` answers with the notification the first one created.',
      headers: idempotencyHeaders,
      body: sendBody,
      response: { 201: notificationSchema, ...problems },
    },
    onRequest: async (request, reply) => {
      const p = await guards.resolve(request, 'notifications:send');
      if (p.role !== 'admin') throw Forbidden('Only administrators send notifications', 'admin_required');
      // A key that may do all its owner may is still not one made for sending: the scope must be named.
      if (p.via === 'api_key' && !p.scopes.includes('notifications:send')) throw Forbidden('This API key lacks the "notifications:send" scope', 'insufficient_scope');
      void reply;
    },
    handler: async (request, reply) => {
      const key = idempotencyOf(request, me(request), { body: request.body });
      // Without a key, the answer is what send() made: no second read.
      if (!key) return reply.status(201).send(await notifications.send(request.body));
      const { resourceId } = await idempotency.once(key, async () => (await notifications.send(request.body)).id);
      return reply.status(201).send(await notifications.view(resourceId));
    },
  });

  app.post('/notifications/read-all', {
    schema: { tags, summary: 'Mark all your notifications read', response: { 200: z.object({ marked: z.number().int() }), ...problems } },
    onRequest,
    handler: async (request) => ({ marked: await notifications.markAllRead(me(request)) }),
  });

  app.get('/notifications/:id', {
    schema: { tags, summary: 'One notification and its status per channel', params: idParam, response: { 200: notificationSchema, ...problems } },
    onRequest,
    handler: async (request) => notifications.get(me(request), request.params.id),
  });

  app.post('/notifications/:id/read', {
    schema: { tags, summary: 'Mark a notification read', params: idParam, response: { 200: notificationSchema, ...problems } },
    onRequest,
    handler: async (request) => notifications.markRead(me(request), request.params.id),
  });

  app.delete('/notifications/:id', {
    schema: { tags, summary: 'Delete a notification', params: idParam, response: { 204: z.null(), ...problems } },
    onRequest,
    handler: async (request, reply) => {
      await notifications.delete(me(request), request.params.id);
      return reply.status(204).send(null);
    },
  });

  // No sign-in: the signed token names the user, the category and the channel. GET only shows a button saying what
  // stops (mail scanners follow links); POST, from that button or a mail client's one-click (RFC 8058, a form body),
  // turns the category off on that channel.
  await app.register(async (plugin) => {
    const scope = plugin as unknown as App;
    scope.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string' }, (_request, body, done) => done(null, Object.fromEntries(new URLSearchParams(String(body)))));
    // RFC 8058 has mail clients send `List-Unsubscribe=One-Click` as multipart/form-data. The signed token in the URL
    // is all the route reads, so the body is taken (within the body limit) and set aside, unparsed: a malformed one changes nothing.
    scope.addContentTypeParser(['multipart/form-data', 'text/plain'], { parseAs: 'buffer' }, (_request, _body, done) => done(null, {}));
    scope.get('/notifications/unsubscribe', {
      schema: { security: [], tags, summary: 'The unsubscribe page of an email or message', querystring: unsubscribeQuery, produces: ['text/html'], response: { 200: z.string(), 400: problemSchema } },
      handler: async (request, reply) => {
        const { category, channel } = notifications.readUnsubscribeToken(request.query.token);
        const what = CHANNEL_NOUN[channel];
        const question = category === '*' ? `Stop receiving notification ${what}?` : `Stop receiving ${what} about <b>${escapeHtml(category)}</b>?`;
        const action = `?token=${encodeURIComponent(request.query.token)}`;
        return reply
          .type('text/html; charset=utf-8')
          .send(page_('Unsubscribe', `<p>${question}</p><form method="post" action="${escapeHtml(action)}"><input type="hidden" name="List-Unsubscribe" value="One-Click"><button type="submit">Unsubscribe</button></form>`));
      },
    });
    scope.post('/notifications/unsubscribe', {
      schema: { security: [], tags, summary: 'One-click unsubscribe from a category (RFC 8058)', querystring: unsubscribeQuery, produces: ['text/html'], response: { 200: z.string(), 400: problemSchema, 404: problemSchema } },
      handler: async (request, reply) => {
        const { category, channel } = await notifications.unsubscribe(request.query.token);
        const what = CHANNEL_NOUN[channel];
        const text = category === '*' ? `You will no longer get notification ${what}.` : `You will no longer get ${what} about <b>${escapeHtml(category)}</b>.`;
        return reply.type('text/html; charset=utf-8').send(page_('Unsubscribed', `<p>${text}</p>`));
      },
    });
  });
}
