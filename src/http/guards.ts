import type { FastifyReply, FastifyRequest, onRequestAsyncHookHandler } from 'fastify';
import { Forbidden, RateLimited, Unauthorized } from '../errors.ts';
import type { Limiter } from '../platform/ratelimit/limiter.ts';
import type { Authenticate, Principal } from '../modules/auth/index.ts';
import type { AuditContext } from '../modules/audit/index.ts';

declare module 'fastify' {
  interface FastifyRequest {
    principal?: Principal;
  }
}

export const ACCESS_COOKIE = 'parley_access';
export const REFRESH_COOKIE = 'parley_refresh';
const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

/** The caller's principal; only valid behind a guard. */
export function principal(request: FastifyRequest): Principal {
  if (!request.principal) throw Unauthorized();
  return request.principal;
}

export function requestContext(request: FastifyRequest): AuditContext & { ip: string; userAgent?: string } {
  return { ip: request.ip, userAgent: request.headers['user-agent'] };
}

/**
 * An origin trusted with the user's cookies: one of ALLOWED_ORIGINS, or the
 * server's own (the console it serves, whatever name the browser reached it
 * by; a page of another site cannot make its requests carry this Origin).
 */
export function originAllowed(request: FastifyRequest, origin: string, allowedOrigins: string[]): boolean {
  return allowedOrigins.includes(origin) || origin === `${request.protocol}://${request.host}`;
}

/** A browser request carrying cookies must come from an allowed origin to change anything. */
export function checkOrigin(request: FastifyRequest, allowedOrigins: string[]): void {
  if (SAFE_METHODS.has(request.method)) return;
  let origin = request.headers.origin;
  if (!origin && request.headers.referer) {
    try {
      origin = new URL(request.headers.referer).origin;
    } catch {
      origin = undefined;
    }
  }
  if (!origin || !originAllowed(request, origin, allowedOrigins)) {
    throw Forbidden('Cookie-authenticated requests that change state must come from an allowed Origin', 'origin_not_allowed');
  }
}

export function bearerToken(request: FastifyRequest): string | undefined {
  const header = request.headers.authorization;
  if (!header) return undefined;
  const [scheme, token] = header.split(' ');
  if (scheme?.toLowerCase() !== 'bearer' || !token) throw Unauthorized('Authorization header must be "Bearer <token>"', 'invalid_authorization_header');
  return token.trim();
}

/**
 * Route guards: who may call. API keys are accepted only on routes that name a
 * scope, so a leaked key can never manage keys, sessions or the account itself.
 */
export function createGuards(deps: {
  authenticate: Authenticate;
  allowedOrigins: string[];
  /**
   * Runs once the caller is known, before any scope or role check, so every
   * authenticated request passes through it (rate limits, bans). It may throw,
   * or return response headers to set.
   */
  afterAuthenticate?: (request: FastifyRequest, principal: Principal) => Promise<Record<string, string> | undefined>;
}) {
  async function authorize(request: FastifyRequest, reply: FastifyReply | undefined, scope?: string): Promise<Principal> {
    const bearer = bearerToken(request);
    const cookie = bearer ? undefined : request.cookies?.[ACCESS_COOKIE];
    const credential = bearer ?? cookie;
    if (!credential) throw Unauthorized();
    if (cookie) checkOrigin(request, deps.allowedOrigins);
    const p = await deps.authenticate(credential);
    const headers = await deps.afterAuthenticate?.(request, p);
    if (headers) reply?.headers(headers);
    if (p.via === 'api_key') {
      if (!scope) throw Forbidden('API keys cannot be used for this endpoint; sign in instead', 'api_key_not_allowed');
      if (p.scopes.length && !p.scopes.includes(scope)) throw Forbidden(`This API key lacks the "${scope}" scope`, 'insufficient_scope');
    }
    request.principal = p;
    return p;
  }

  return {
    /** Authenticates the request in a handler that only sometimes needs a user. */
    resolve: (request: FastifyRequest, scope?: string) => authorize(request, undefined, scope),
    user(opts: { scope?: string } = {}): onRequestAsyncHookHandler {
      return async (request, reply) => {
        await authorize(request, reply, opts.scope);
      };
    },
    admin(): onRequestAsyncHookHandler {
      return async (request, reply) => {
        const p = await authorize(request, reply);
        if (p.role !== 'admin') throw Forbidden('Administrators only', 'admin_required');
      };
    },
  };
}

export type Guards = ReturnType<typeof createGuards>;

/**
 * Answers kept by no cache: for routes whose answer depends on a header a browser cache does not key on (a share
 * link's X-Share-Token), where a stored 410 would be shown for another link at the same URL.
 */
export const noStore: onRequestAsyncHookHandler = async (_request, reply) => {
  reply.header('cache-control', 'no-store');
};

/** Counts a hit against `limiter` for the key of this request and sets RateLimit-* headers. */
export function rateLimit(limiter: Limiter, key: (request: FastifyRequest) => string): onRequestAsyncHookHandler {
  return async (request: FastifyRequest, reply: FastifyReply) => {
    const r = await limiter.consume(key(request));
    const reset = Math.ceil(r.resetMs / 1000);
    reply.header('ratelimit-limit', r.limit).header('ratelimit-remaining', r.remaining).header('ratelimit-reset', reset);
    reply.header('ratelimit-policy', `${limiter.spec.points};w=${limiter.spec.durationSeconds}`);
    if (!r.allowed) throw RateLimited(r.resetMs / 1000);
  };
}
