import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Config } from '../../config.ts';
import { ACCESS_COOKIE, REFRESH_COOKIE } from '../../http/guards.ts';
import type { TokenPair } from './service.ts';

/** The refresh cookie only travels to the auth routes that use it. */
const REFRESH_COOKIE_PATH = '/v1/auth';
const OAUTH_FLOW_COOKIE = 'parley_oauth_flow';
const OAUTH_FLOW_PATH = '/v1/auth/oauth';

/** Cookies are Secure when Parley is served over https. */
const secure = (config: Config) => config.publicUrl.startsWith('https://');

/** Browser mode: a session's tokens as httpOnly cookies. */
export function setSessionCookies(reply: FastifyReply, tokens: TokenPair, config: Config) {
  reply.setCookie(ACCESS_COOKIE, tokens.accessToken, { httpOnly: true, secure: secure(config), sameSite: 'lax', path: '/', maxAge: config.auth.accessTtl });
  reply.setCookie(REFRESH_COOKIE, tokens.refreshToken, { httpOnly: true, secure: secure(config), sameSite: 'lax', path: REFRESH_COOKIE_PATH, maxAge: config.auth.refreshTtl });
}

export function clearSessionCookies(reply: FastifyReply) {
  reply.clearCookie(ACCESS_COOKIE, { path: '/' });
  reply.clearCookie(REFRESH_COOKIE, { path: REFRESH_COOKIE_PATH });
}

/**
 * Ties an OAuth sign-in to the browser that started it, so a callback link
 * made by someone else cannot sign a victim's browser into their account.
 * Lax still lets it ride the provider's top-level redirect back.
 */
export const oauthFlowCookie = {
  set(reply: FastifyReply, state: string, config: Config, maxAge: number) {
    reply.setCookie(OAUTH_FLOW_COOKIE, state, { httpOnly: true, secure: secure(config), sameSite: 'lax', path: OAUTH_FLOW_PATH, maxAge });
  },
  read: (request: FastifyRequest): string | undefined => request.cookies[OAUTH_FLOW_COOKIE],
  clear: (reply: FastifyReply) => reply.clearCookie(OAUTH_FLOW_COOKIE, { path: OAUTH_FLOW_PATH }),
};
