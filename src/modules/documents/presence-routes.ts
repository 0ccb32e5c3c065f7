import { z } from 'zod';
import type { App } from '../../http/types.ts';
import type { RouteContext } from '../module.ts';
import { documentParams, presenceBody, presenceSchema } from './contracts.ts';
import { toPresence } from './responses.ts';
import { me, problems, tags } from './routes.ts';

/** Presence: heartbeats in, who is here out; changes are pushed on the `document:<id>` WebSocket topic. */
export function presenceRoutes(app: App, { services, guards, config }: RouteContext<'documents' | 'documentPresence'>) {
  const { documents, documentPresence: presence } = services;
  const onRequest = guards.user({ scope: 'documents' });
  const list = z.object({ data: z.array(presenceSchema), expiresIn: z.number().int().describe('Seconds a heartbeat counts: send the next well within it') });
  const seconds = config.documents.presenceSeconds;

  app.post('/documents/:id/presence', {
    schema: { tags, summary: "Heartbeat: you are viewing (any reader) or editing (editors) it", params: documentParams, body: presenceBody, response: { 200: list, ...problems } },
    onRequest,
    handler: async (request) => ({ data: (await presence.beat(await documents.access.forUser(me(request), request.params.id), request.body.state)).map(toPresence), expiresIn: seconds }),
  });

  app.get('/documents/:id/presence', {
    schema: { tags, summary: 'Who is viewing or editing it now', params: documentParams, response: { 200: list, ...problems } },
    onRequest,
    handler: async (request) => ({ data: (await presence.present(await documents.access.forUser(me(request), request.params.id))).map(toPresence), expiresIn: seconds }),
  });

  app.delete('/documents/:id/presence', {
    schema: { tags, summary: 'You left', params: documentParams, response: { 204: z.null(), ...problems } },
    onRequest,
    handler: async (request, reply) => {
      await presence.leave(await documents.access.forUser(me(request), request.params.id));
      return reply.status(204).send(null);
    },
  });
}
