import { z } from 'zod';
import { principal } from '../../http/guards.ts';
import { problemSchema } from '../../http/problem.ts';
import type { App } from '../../http/types.ts';
import type { RouteContext } from '../module.ts';
import { adminStorageQuery, storageCursor, storageSchema } from './contracts.ts';

const problems = { 400: problemSchema, 401: problemSchema, 403: problemSchema };

/** What users store now: the caller's own, or every user's (most bytes first) for admins. */
export function footprintRoutes(app: App, { services, guards }: RouteContext<'footprint' | 'users'>) {
  const { footprint } = services;

  app.get('/usage/storage', {
    schema: {
      tags: ['usage'],
      summary: 'What you store',
      description: 'Conversations, messages, projects and prompts (how many, and the UTF-8 bytes of their text) and files (how many, and their stored bytes). Exact, computed when asked.',
      response: { 200: storageSchema, ...problems },
    },
    onRequest: guards.user({ scope: 'usage:read' }),
    handler: async (request) => footprint.of(principal(request).userId),
  });

  app.get('/admin/usage/storage', {
    schema: {
      tags: ['admin'],
      summary: 'What users store, most bytes first',
      description:
        'Users who store nothing are left out, unless asked for by userId. The listing reads a per-user rollup refreshed every 10 minutes (the `usage.storage` schedule; at once on the first listing ever) and whenever one user\'s figures are asked for, here by userId or by that user at /v1/usage/storage; `asOf` is when the oldest figures on the page were computed. Asked for by userId, the figures are exact, computed when asked.',
      querystring: adminStorageQuery,
      response: {
        200: z.object({
          data: z.array(storageSchema),
          nextCursor: z.string().nullable(),
          asOf: z.string().describe('The figures on this page were computed at or after this time'),
        }),
        404: problemSchema,
        ...problems,
      },
    },
    onRequest: guards.admin(),
    handler: async (request) => {
      const { userId, limit, cursor } = request.query;
      if (userId) {
        await services.users.require(userId);
        const asOf = new Date().toISOString();
        return { data: [await footprint.of(userId)], nextCursor: null, asOf };
      }
      const { users, asOf } = await footprint.top({ limit: limit + 1, after: cursor });
      const data = users.slice(0, limit);
      return { data, nextCursor: users.length > limit ? storageCursor(data[data.length - 1]!) : null, asOf: asOf.toISOString() };
    },
  });
}
