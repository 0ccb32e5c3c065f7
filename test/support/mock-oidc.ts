import { createHash } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { OAuth2Server, type MutableRedirectUri, type MutableResponse, type MutableToken } from 'oauth2-mock-server';

/** What the mock saw of one flow: the PKCE pair as the client sent it at each end. */
export interface SeenPkce {
  challenge?: string;
  method?: string;
  verifier?: string;
}

/**
 * A local OpenID Connect provider (oauth2-mock-server): discovery, JWKS,
 * authorize that consents at once, a token endpoint that checks PKCE, userinfo.
 * `signInAs` sets the claims of the next ID tokens.
 */
export async function startMockOidc(clientId = 'parley-test', clientSecret = 'parley-test-secret') {
  const server = new OAuth2Server();
  await server.issuer.keys.generate('RS256');
  await server.start(0, '127.0.0.1');
  let claims: Record<string, unknown> = {};
  let userinfo: Record<string, unknown> | undefined;
  const seen: SeenPkce = {};

  server.service.on('beforeTokenSigning', (token: MutableToken) => Object.assign(token.payload, claims));
  server.service.on('beforeUserinfo', (res: MutableResponse) => {
    if (userinfo) res.body = userinfo;
  });
  server.service.on('beforeAuthorizeRedirect', (_uri: MutableRedirectUri, req: IncomingMessage) => {
    const query = new URL(req.url!, 'http://mock').searchParams;
    seen.challenge = query.get('code_challenge') ?? undefined;
    seen.method = query.get('code_challenge_method') ?? undefined;
  });
  server.service.on('beforeResponse', (_res: MutableResponse, req: IncomingMessage & { body?: Record<string, string> }) => {
    seen.verifier = req.body?.code_verifier;
  });

  return {
    server,
    issuer: server.issuer.url!,
    seen,
    env: {
      OIDC_ISSUER: server.issuer.url!,
      OIDC_CLIENT_ID: clientId,
      OIDC_CLIENT_SECRET: clientSecret,
      OAUTH_ALLOW_INSECURE_HTTP: 'true',
    },
    /** The next sign-ins are this person; `userinfo` replaces the userinfo response. */
    signInAs(next: Record<string, unknown>, opts: { userinfo?: Record<string, unknown> } = {}) {
      claims = next;
      userinfo = opts.userinfo;
    },
    close: () => server.stop(),
  };
}

export type MockOidc = Awaited<ReturnType<typeof startMockOidc>>;

export const s256 = (verifier: string) => createHash('sha256').update(verifier).digest('base64url');
