import type { FastifyReply } from 'fastify';
import type { Config } from '../../config.ts';
import { setSessionCookies } from './cookies.ts';
import type { TokenPair } from './service.ts';

/**
 * The body of a response that opens a session. In browser (cookie) mode the
 * tokens go into httpOnly cookies instead and are left out of the body, where
 * scripts could read them.
 */
export function sessionResponse(reply: FastifyReply, tokens: TokenPair, cookie: boolean, config: Config) {
  if (!cookie) return tokens;
  setSessionCookies(reply, tokens, config);
  const { accessToken: _a, refreshToken: _r, ...rest } = tokens;
  return rest;
}
