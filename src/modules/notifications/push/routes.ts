import type { FastifyRequest } from 'fastify';
import { z } from 'zod';
import { principal } from '../../../http/guards.ts';
import { idParam } from '../../../http/pagination.ts';
import { problemSchema } from '../../../http/problem.ts';
import type { App } from '../../../http/types.ts';
import type { RouteContext } from '../../module.ts';
import { subscribeBody, subscriptionSchema, vapidKeyResponse } from './contracts.ts';

const problems = { 400: problemSchema, 401: problemSchema, 403: problemSchema, 404: problemSchema };
const tags = ['notifications'];

/** Web push: the VAPID public key browsers subscribe with, and each user's browser subscriptions. Absent when PUSH_ENABLED=false. */
export async function pushRoutes(app: App, { services, guards }: RouteContext<'webPush'>) {
  const { webPush } = services;
  if (!webPush) return;
  const onRequest = guards.user({ scope: 'notifications' });
  const me = (request: FastifyRequest) => principal(request).userId;

  // No sign-in: a public key, which a page may need before it knows who is there.
  app.get('/notifications/push/vapid-public-key', {
    schema: { security: [], tags, summary: "The deployment's VAPID public key, for pushManager.subscribe()", response: { 200: vapidKeyResponse } },
    handler: async (_request, reply) => {
      reply.header('cache-control', 'public, max-age=3600');
      return { publicKey: (await webPush.vapid.get()).publicKey };
    },
  });

  app.get('/notifications/push/subscriptions', {
    schema: { tags, summary: 'Your browsers that get push notifications', response: { 200: z.object({ data: z.array(subscriptionSchema) }), ...problems } },
    onRequest,
    handler: async (request) => ({ data: await webPush.subscriptions.list(me(request)) }),
  });

  app.post('/notifications/push/subscriptions', {
    schema: {
      tags,
      summary: "Register this browser's push subscription",
      description:
        'The body is what `PushSubscription.toJSON()` gives (endpoint, keys, expirationTime), with an optional `label`. ' +
        'The endpoint must be https on a public address; p256dh a P-256 public key; auth 16 bytes. ' +
        'Registering a known endpoint again updates it (200) instead of adding one (201); it then belongs to whoever registered it last.',
      body: subscribeBody,
      response: { 200: subscriptionSchema, 201: subscriptionSchema, ...problems },
    },
    onRequest,
    handler: async (request, reply) => {
      const { subscription, created } = await webPush.subscriptions.register(me(request), request.body);
      return reply.status(created ? 201 : 200).send(subscription);
    },
  });

  app.delete('/notifications/push/subscriptions/:id', {
    schema: { tags, summary: 'Stop push notifications to a browser', params: idParam, response: { 204: z.null(), ...problems } },
    onRequest,
    handler: async (request, reply) => {
      await webPush.subscriptions.delete(me(request), request.params.id);
      return reply.status(204).send(null);
    },
  });
}
