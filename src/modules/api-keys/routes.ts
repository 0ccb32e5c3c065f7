import { z } from 'zod';
import { principal, requestContext } from '../../http/guards.ts';
import { idParam, page, pageQuery, toPage } from '../../http/pagination.ts';
import { problemSchema } from '../../http/problem.ts';
import type { App } from '../../http/types.ts';
import type { RouteContext } from '../module.ts';
import { apiKeySchema, createApiKeyBody, createdApiKeySchema } from './contracts.ts';
import { toPublicApiKey } from './service.ts';

const problems = { 401: problemSchema, 403: problemSchema };

/** Managing keys needs a signed-in session: the guard names no scope, so an API key cannot manage keys. */
export function apiKeysRoutes(app: App, { services, guards }: RouteContext<'apiKeys'>) {
  const { apiKeys } = services;

  app.post('/api-keys', {
    schema: {
      tags: ['api-keys'],
      summary: 'Create an API key',
      description: 'The secret is in `key` and is returned only once. A user with `API_KEYS_MAX_PER_USER` keys already (default 1,000) is 409 `api_key_limit`.',
      body: createApiKeyBody,
      response: { 201: createdApiKeySchema, 400: problemSchema, 409: problemSchema, ...problems },
    },
    onRequest: guards.user(),
    handler: async (request, reply) => {
      const { expiresAt, ...input } = request.body;
      const created = await apiKeys.create(
        principal(request).userId,
        { ...input, expiresAt: expiresAt ? new Date(expiresAt) : null },
        requestContext(request),
      );
      return reply.status(201).send({ ...toPublicApiKey(created.key), key: created.secret });
    },
  });

  app.get('/api-keys', {
    schema: { tags: ['api-keys'], summary: 'List your API keys', querystring: pageQuery, response: { 200: page(apiKeySchema), 400: problemSchema, ...problems } },
    onRequest: guards.user(),
    handler: async (request) => {
      const { limit, cursor } = request.query;
      const rows = await apiKeys.list(principal(request).userId, { limit: limit + 1, cursor });
      return toPage(rows, limit, toPublicApiKey);
    },
  });

  app.get('/api-keys/:id', {
    schema: { tags: ['api-keys'], summary: 'One of your API keys', params: idParam, response: { 200: apiKeySchema, 404: problemSchema, ...problems } },
    onRequest: guards.user(),
    handler: async (request) => toPublicApiKey(await apiKeys.get(principal(request).userId, request.params.id)),
  });

  app.delete('/api-keys/:id', {
    schema: { tags: ['api-keys'], summary: 'Delete an API key; it stops working at once', params: idParam, response: { 204: z.null(), 404: problemSchema, ...problems } },
    onRequest: guards.user(),
    handler: async (request, reply) => {
      await apiKeys.delete(principal(request).userId, request.params.id, requestContext(request));
      return reply.status(204).send(null);
    },
  });
}
