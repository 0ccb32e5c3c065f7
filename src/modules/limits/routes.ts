import type { FastifyRequest } from 'fastify';
import { principal, requestContext } from '../../http/guards.ts';
import { idParam, page, toPage } from '../../http/pagination.ts';
import { problemSchema } from '../../http/problem.ts';
import type { App } from '../../http/types.ts';
import type { RouteContext } from '../module.ts';
import type { Principal } from '../auth/index.ts';
import { banSchema, bansQuery, createBanBody, toBan } from './contracts.ts';
import { rateLimitHeaders, type RequestLimits } from './service.ts';

const problems = { 400: problemSchema, 401: problemSchema, 403: problemSchema, 429: problemSchema };
const tags = ['admin'];

/** The guards' afterAuthenticate hook: every authenticated request is checked, and told its tightest limit. */
export const limitRequests = (limits: RequestLimits) => async (request: FastifyRequest, p: Principal) => {
  const state = await limits.check(request, p);
  return state && rateLimitHeaders(state);
};

/** Bans: administrators only, with a session. */
export function limitsRoutes(app: App, { services, guards }: RouteContext<'limits'>) {
  const { limits } = services;
  const onRequest = guards.admin();

  app.get('/admin/bans', {
    schema: { tags, summary: 'List bans, newest first', querystring: bansQuery, response: { 200: page(banSchema), ...problems } },
    onRequest,
    handler: async (request) => {
      const { limit, ...filters } = request.query;
      return toPage(await limits.listBans({ ...filters, limit: limit + 1 }), limit, toBan);
    },
  });

  app.post('/admin/bans', {
    schema: {
      tags,
      summary: 'Ban a user, API key or IP address',
      description: 'Takes effect on every instance at once: the subject\'s requests get 403 `banned` until it expires or is lifted. A user or API key id that does not exist is a 404.',
      body: createBanBody,
      response: { 201: banSchema, 404: problemSchema, 409: problemSchema, ...problems },
    },
    onRequest,
    handler: async (request, reply) => {
      const { kind, subject, seconds, reason } = request.body;
      const ban = await limits.ban(kind, subject, seconds, reason, { adminId: principal(request).userId, ...requestContext(request) });
      return reply.status(201).send(toBan(ban));
    },
  });

  app.delete('/admin/bans/:id', {
    schema: { tags, summary: 'Lift a ban', description: 'The subject may call again at once, with fresh rate-limit counters.', params: idParam, response: { 200: banSchema, 404: problemSchema, ...problems } },
    onRequest,
    handler: async (request) => toBan(await limits.lift(request.params.id, principal(request).userId, requestContext(request))),
  });
}
