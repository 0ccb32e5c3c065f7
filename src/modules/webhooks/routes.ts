import type { FastifyRequest } from 'fastify';
import { z } from 'zod';
import { principal } from '../../http/guards.ts';
import { page, pageQuery, toPage } from '../../http/pagination.ts';
import { problemSchema } from '../../http/problem.ts';
import type { App } from '../../http/types.ts';
import type { RouteContext } from '../module.ts';
import {
  attemptSchema,
  createEndpointBody,
  endpointParams,
  endpointSchema,
  endpointWithSecret,
  messageParams,
  messageSchema,
  messagesQuery,
  toAttempt,
  toEndpoint,
  toMessage,
  updateEndpointBody,
} from './contracts.ts';

const problems = { 400: problemSchema, 401: problemSchema, 403: problemSchema, 404: problemSchema };
const tags = ['webhooks'];

/** Endpoints, their messages and attempts, replay and test sends. API keys need the `webhooks` scope. */
export function webhooksRoutes(app: App, { services, guards }: RouteContext<'webhooks'>) {
  const { webhooks } = services;
  const onRequest = guards.user({ scope: 'webhooks' });
  const me = (request: FastifyRequest) => principal(request).userId;

  app.post('/webhooks/endpoints', {
    schema: {
      tags,
      summary: 'Register an endpoint (its secret is shown once)',
      description: 'A user with `WEBHOOKS_MAX_ENDPOINTS` endpoints already (default 50) is 409 `webhook_endpoint_limit`.',
      body: createEndpointBody,
      response: { 201: endpointWithSecret, 409: problemSchema, ...problems },
    },
    onRequest,
    handler: async (request, reply) => {
      const { endpoint, secret } = await webhooks.create(me(request), request.body);
      return reply.status(201).send({ ...toEndpoint(endpoint), secret });
    },
  });

  app.get('/webhooks/endpoints', {
    schema: { tags, summary: 'Your endpoints, newest first', querystring: pageQuery, response: { 200: page(endpointSchema), ...problems } },
    onRequest,
    handler: async (request) => {
      const { limit, cursor } = request.query;
      return toPage(await webhooks.list(me(request), { limit: limit + 1, cursor }), limit, toEndpoint);
    },
  });

  app.get('/webhooks/endpoints/:id', {
    schema: { tags, summary: 'One endpoint', params: endpointParams, response: { 200: endpointSchema, ...problems } },
    onRequest,
    handler: async (request) => toEndpoint(await webhooks.get(me(request), request.params.id)),
  });

  app.patch('/webhooks/endpoints/:id', {
    schema: { tags, summary: 'Change the URL, events, description or rate limit; disable or enable again', params: endpointParams, body: updateEndpointBody, response: { 200: endpointSchema, ...problems } },
    onRequest,
    handler: async (request) => toEndpoint(await webhooks.update(me(request), request.params.id, request.body)),
  });

  app.delete('/webhooks/endpoints/:id', {
    schema: { tags, summary: 'Delete an endpoint with its messages', params: endpointParams, response: { 204: z.null(), ...problems } },
    onRequest,
    handler: async (request, reply) => {
      await webhooks.delete(me(request), request.params.id);
      return reply.status(204).send(null);
    },
  });

  app.post('/webhooks/endpoints/:id/rotate-secret', {
    schema: { tags, summary: 'A new secret (shown once); the secrets it replaced also sign, each for 24 hours', params: endpointParams, response: { 200: endpointWithSecret, ...problems } },
    onRequest,
    handler: async (request) => {
      const { endpoint, secret } = await webhooks.rotateSecret(me(request), request.params.id);
      return { ...toEndpoint(endpoint), secret };
    },
  });

  app.post('/webhooks/endpoints/:id/test', {
    schema: { tags, summary: 'Send a `webhook.test` message now', description: 'A disabled endpoint is 409 `webhook_endpoint_disabled`.', params: endpointParams, response: { 202: messageSchema, 409: problemSchema, ...problems } },
    onRequest,
    handler: async (request, reply) => reply.status(202).send(toMessage(await webhooks.test(me(request), request.params.id))),
  });

  app.get('/webhooks/endpoints/:id/messages', {
    schema: { tags, summary: "An endpoint's messages, newest first", params: endpointParams, querystring: messagesQuery, response: { 200: page(messageSchema), ...problems } },
    onRequest,
    handler: async (request) => {
      const { limit, cursor } = request.query;
      return toPage(await webhooks.messages(me(request), request.params.id, { limit: limit + 1, cursor }), limit, toMessage);
    },
  });

  app.get('/webhooks/messages/:id', {
    schema: { tags, summary: 'One message', params: messageParams, response: { 200: messageSchema, ...problems } },
    onRequest,
    handler: async (request) => toMessage(await webhooks.message(me(request), request.params.id)),
  });

  app.get('/webhooks/messages/:id/attempts', {
    schema: { tags, summary: "A message's delivery attempts, oldest first", params: messageParams, response: { 200: z.object({ data: z.array(attemptSchema) }), ...problems } },
    onRequest,
    handler: async (request) => ({ data: (await webhooks.attempts(me(request), request.params.id)).map(toAttempt) }),
  });

  app.post('/webhooks/messages/:id/replay', {
    schema: { tags, summary: 'Send a message again, with the same webhook-id', description: 'A message of a disabled endpoint is 409 `webhook_endpoint_disabled`.', params: messageParams, response: { 202: messageSchema, 409: problemSchema, ...problems } },
    onRequest,
    handler: async (request, reply) => reply.status(202).send(toMessage(await webhooks.replay(me(request), request.params.id))),
  });
}
