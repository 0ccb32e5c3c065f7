import type { FastifyRequest } from 'fastify';
import { z } from 'zod';
import { rateLimit, requestContext } from '../../../http/guards.ts';
import { problemSchema } from '../../../http/problem.ts';
import type { App } from '../../../http/types.ts';
import type { RouteContext } from '../../module.ts';
import { mfaChallenge, sessionTokens } from '../contracts.ts';
import { oauthFlowCookie, setSessionCookies } from '../cookies.ts';
import { authorizeQuery, authorizeUrl, callbackQuery, providerList, providerParams } from './contracts.ts';

const problems = { 400: problemSchema, 403: problemSchema, 404: problemSchema, 409: problemSchema, 429: problemSchema, 502: problemSchema };

export function oauthRoutes(app: App, { config, services }: RouteContext<'oauth' | 'authLimits' | 'limits'>) {
  const { oauth, authLimits, limits } = services;
  const byIp = (r: FastifyRequest) => r.ip;

  app.get('/auth/providers', {
    schema: { tags: ['auth'], summary: 'The OAuth / OpenID Connect providers you can sign in with', security: [], response: { 200: providerList } },
    handler: async () => ({ data: oauth.providers().map((id) => ({ id, authorizeUrl: `/v1/auth/oauth/${encodeURIComponent(id)}/authorize` })) }),
  });

  app.get('/auth/oauth/:provider/authorize', {
    schema: {
      tags: ['auth'],
      summary: 'Start signing in with a provider',
      description:
        'Redirects (302) to the provider; with `Accept: application/json`, returns the URL instead. Sets a short-lived ' +
        'cookie: a `redirectTo` sign-in must finish in the browser that started it.',
      security: [],
      params: providerParams,
      querystring: authorizeQuery,
      response: { 200: authorizeUrl, ...problems },
    },
    onRequest: rateLimit(authLimits.oauth, byIp),
    handler: async (request, reply) => {
      const { url, state, expiresIn } = await oauth.start(request.params.provider, request.query.redirectTo);
      oauthFlowCookie.set(reply, state, config, expiresIn);
      reply.header('cache-control', 'no-store');
      if (request.headers.accept?.includes('application/json')) return { url: url.href };
      return reply.redirect(url.href, 302);
    },
  });

  app.get('/auth/oauth/:provider/callback', {
    schema: {
      tags: ['auth'],
      summary: 'Where the provider sends the browser back',
      description:
        'Returns tokens, or an MFA challenge to complete with POST /v1/auth/mfa/verify. When the sign-in was started with ' +
        '`redirectTo`, sets the session cookies and redirects (302) there instead; an MFA challenge then travels in the ' +
        'URL fragment (`#mfaRequired=true&mfaToken=…&expiresIn=…`).',
      security: [],
      params: providerParams,
      querystring: callbackQuery,
      response: { 200: z.union([sessionTokens, mfaChallenge]), ...problems },
    },
    onRequest: rateLimit(authLimits.login, byIp),
    handler: async (request, reply) => {
      const query = new URLSearchParams(request.url.split('?')[1] ?? '');
      // As at password sign-in and sign-up: a banned address makes no account; a banned user, or anyone but an admin at a banned address, gets no session.
      const gate = { signUp: () => limits.refuseBannedAddress(request), signIn: (user: { id: string; role: 'user' | 'admin' }) => limits.refuseBanned(request, { userId: user.id, role: user.role }) };
      const { result, redirectTo } = await oauth.complete(request.params.provider, query, requestContext(request), oauthFlowCookie.read(request), gate);
      oauthFlowCookie.clear(reply);
      reply.header('cache-control', 'no-store');
      if (!redirectTo) return result;
      if (result.mfaRequired) {
        const target = new URL(redirectTo);
        target.hash = new URLSearchParams({ mfaRequired: 'true', mfaToken: result.mfaToken, expiresIn: String(result.expiresIn) }).toString();
        return reply.redirect(target.href, 302);
      }
      setSessionCookies(reply, result, config);
      return reply.redirect(redirectTo, 302);
    },
  });
}
