import type { FastifyReply } from 'fastify';
import { problemSchema } from '../../http/problem.ts';
import { principal } from '../../http/guards.ts';
import type { App } from '../../http/types.ts';
import type { RouteContext } from '../module.ts';

/** The signed-in user's data as one zip. Sign-in only: an API key cannot take everything an account holds. */
export function exportRoutes(app: App, { services, guards }: RouteContext<'exporter'>) {
  app.get('/users/me/export', {
    schema: {
      tags: ['users'],
      summary: 'Download all your data (zip)',
      description:
        'A zip made as it downloads: `manifest.json` (format version, time, every entry), then one folder per module — `users/profile.json`, ' +
        '`chat/conversations.json` (every conversation with all its messages and branches), `documents/` (each document with its versions and comments, ' +
        'and its Markdown), `files/index.json` with each file\'s bytes under `files/<id>/<name>`, `projects/`, `knowledge/`, `notifications/`, `api-keys/` ' +
        '(names, scopes and dates; never the keys). `missing.json` names any file whose bytes were gone from storage. Signed-in users only (cookie or ' +
        'access token); API keys are refused.',
      response: { 401: problemSchema, 403: problemSchema },
    },
    onRequest: guards.user(),
    handler: async (request, reply: FastifyReply) => {
      const { userId } = principal(request);
      const zip = await services.exporter.archive(userId);
      const day = new Date().toISOString().slice(0, 10);
      return reply
        .header('content-type', 'application/zip')
        .header('content-disposition', `attachment; filename="parley-export-${day}.zip"`)
        .header('cache-control', 'no-store')
        .send(zip);
    },
  });
}
