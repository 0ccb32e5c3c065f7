import type { FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { NotFound, Unauthorized } from '../../errors.ts';
import { REFRESH_COOKIE, checkOrigin, principal, rateLimit, requestContext } from '../../http/guards.ts';
import { problemSchema } from '../../http/problem.ts';
import { idParam } from '../../http/pagination.ts';
import type { App } from '../../http/types.ts';
import { clientKey } from '../../platform/net/client-address.ts';
import type { RouteContext } from '../module.ts';
import { clearSessionCookies } from './cookies.ts';
import { loginBody, logoutBody, mfaChallenge, refreshBody, registerBody, sessionSchema, sessionTokens } from './contracts.ts';
import type { TokenPair } from './service.ts';
import { sessionResponse } from './session-response.ts';

const problems = { 400: problemSchema, 401: problemSchema, 403: problemSchema, 409: problemSchema, 429: problemSchema };

export function authRoutes(app: App, { config, services, guards }: RouteContext<'auth' | 'authLimits' | 'sessions' | 'limits'>) {
  const { auth, authLimits, limits } = services;
  // A banned address signs up no new account (its signed-in requests are refused by the guards).
  const unbannedAddress = (request: FastifyRequest) => limits.refuseBannedAddress(request);
  // An IPv6 client by its /64, as request limits and bans count it: one host holds a whole /64.
  const byIp = (r: FastifyRequest) => clientKey(r.ip);

  const respond = (reply: FastifyReply, tokens: TokenPair, cookie: boolean) => sessionResponse(reply, tokens, cookie, config);

  function clearCookies(reply: FastifyReply) {
    clearSessionCookies(reply);
  }

  /** The refresh token from the body, or from the cookie (which then needs an allowed Origin). */
  function presentedRefreshToken(request: FastifyRequest, body: { refreshToken?: string }) {
    if (body.refreshToken) return { token: body.refreshToken, fromCookie: false };
    const cookie = request.cookies[REFRESH_COOKIE];
    if (!cookie) return undefined;
    checkOrigin(request, config.allowedOrigins);
    return { token: cookie, fromCookie: true };
  }

  app.post('/auth/register', {
    schema: { security: [], tags: ['auth'], summary: 'Create an account with email and password', body: registerBody, response: { 201: sessionTokens, ...problems } },
    onRequest: [unbannedAddress, rateLimit(authLimits.register, byIp)],
    handler: async (request, reply) => {
      const { cookie, ...input } = request.body;
      const tokens = await auth.register(input, requestContext(request));
      return reply.status(201).send(respond(reply, tokens, cookie ?? false));
    },
  });

  app.post('/auth/login', {
    schema: {
      security: [],
      tags: ['auth'],
      summary: 'Sign in with email and password',
      description: 'When two-factor authentication is on, returns an MFA challenge to complete with POST /v1/auth/mfa/verify.',
      body: loginBody,
      response: { 200: z.union([sessionTokens, mfaChallenge]), ...problems },
    },
    onRequest: rateLimit(authLimits.login, byIp),
    handler: async (request, reply) => {
      const { cookie, ...input } = request.body;
      // A banned user, or (but for admins) one at a banned address, gets no session: 403 banned, as any call of theirs would.
      const result = await auth.login(input, requestContext(request), (user) => limits.refuseBanned(request, { userId: user.id, role: user.role }));
      if (result.mfaRequired) return result;
      const { mfaRequired: _, ...tokens } = result;
      return respond(reply, tokens, cookie ?? false);
    },
  });

  app.post('/auth/refresh', {
    schema: { security: [], tags: ['auth'], summary: 'Exchange a refresh token for new tokens (rotates it)', body: refreshBody, response: { 200: sessionTokens, ...problems } },
    onRequest: rateLimit(authLimits.refresh, byIp),
    handler: async (request, reply) => {
      const presented = presentedRefreshToken(request, request.body);
      if (!presented) throw Unauthorized('A refresh token is required', 'invalid_refresh_token');
      const tokens = await auth.refresh(presented.token, requestContext(request));
      return respond(reply, tokens, presented.fromCookie || (request.body.cookie ?? false));
    },
  });

  app.post('/auth/logout', {
    schema: { tags: ['auth'], summary: 'End the current session', body: logoutBody, response: { 204: z.null(), ...problems } },
    handler: async (request, reply) => {
      const presented = presentedRefreshToken(request, request.body);
      if (presented) await auth.logout({ refreshToken: presented.token }, requestContext(request));
      // The session of the access token too, when one comes: a refresh token that matches nothing (or another
      // session) must not leave the caller signed in while answering that it signed out.
      if (!presented || request.headers.authorization) {
        const p = presented ? await guards.resolve(request).catch(() => undefined) : await guards.resolve(request);
        if (p?.sessionId) await auth.logout({ sessionId: p.sessionId, userId: p.userId }, requestContext(request));
      }
      clearCookies(reply);
      return reply.status(204).send(null);
    },
  });

  app.post('/auth/logout-all', {
    schema: { tags: ['auth'], summary: 'End every session of the current user', response: { 200: z.object({ revoked: z.number().int() }), ...problems } },
    onRequest: guards.user(),
    handler: async (request, reply) => {
      const revoked = await auth.logoutAll(principal(request).userId, requestContext(request));
      clearCookies(reply);
      return { revoked };
    },
  });

  app.get('/auth/sessions', {
    schema: { tags: ['auth'], summary: 'List the active sessions of the current user', response: { 200: z.object({ data: z.array(sessionSchema) }), 401: problemSchema } },
    onRequest: guards.user(),
    handler: async (request) => {
      const p = principal(request);
      const rows = await services.sessions.listActive(p.userId);
      return {
        data: rows.map((s) => ({
          id: s.id,
          current: s.id === p.sessionId,
          method: s.method,
          device: s.userAgent,
          ip: s.ip,
          createdAt: s.createdAt.toISOString(),
          lastUsedAt: s.lastUsedAt.toISOString(),
          expiresAt: s.expiresAt.toISOString(),
        })),
      };
    },
  });

  app.delete('/auth/sessions/:id', {
    schema: { tags: ['auth'], summary: 'Revoke one of your sessions', params: idParam, response: { 204: z.null(), 401: problemSchema, 404: problemSchema } },
    onRequest: guards.user(),
    handler: async (request, reply) => {
      const revoked = await auth.revokeSession(principal(request).userId, request.params.id, requestContext(request));
      if (!revoked) throw NotFound('Session', 'session_not_found');
      return reply.status(204).send(null);
    },
  });
}

/** Public keys for verifying access tokens; served at the root, as OIDC discovery expects. */
export function jwksRoute(app: App, { services }: RouteContext<'keys'>) {
  app.get('/.well-known/jwks.json', {
    schema: { security: [], tags: ['auth'], summary: 'JSON Web Key Set for access tokens', response: { 200: z.object({ keys: z.array(z.record(z.string(), z.unknown())) }) } },
    handler: async (_request, reply) => {
      reply.header('cache-control', 'public, max-age=300');
      return services.keys.jwks();
    },
  });
}
