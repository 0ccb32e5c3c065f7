import * as client from 'openid-client';
import { z } from 'zod';
import type { OAuthProviderConfig } from '../settings.ts';
import { PROVIDER_TIMEOUT_SECONDS } from './oidc.ts';
import type { ExternalIdentity, OAuthProvider } from './providers.ts';

const githubUser = z.object({ id: z.number().int(), login: z.string(), name: z.string().nullish(), email: z.string().nullish() });
const githubEmails = z.array(z.object({ email: z.string(), primary: z.boolean(), verified: z.boolean() }));

/**
 * GitHub (or GitHub Enterprise Server): plain OAuth 2 with PKCE, no ID token.
 * The identity comes from its REST API: GET /user, and GET /user/emails for a
 * verified address (the profile's public email says nothing about verification).
 */
export function githubProvider(p: OAuthProviderConfig, allowInsecureHttp: boolean): OAuthProvider {
  const base = p.baseUrl!.replace(/\/$/, '');
  const api = p.apiUrl!.replace(/\/$/, '');
  const tokenEndpoint = `${base}/login/oauth/access_token`;
  const config = new client.Configuration(
    { issuer: base, authorization_endpoint: `${base}/login/oauth/authorize`, token_endpoint: tokenEndpoint },
    p.clientId,
    p.clientSecret,
    client.ClientSecretPost(p.clientSecret),
  );
  config[client.customFetch] = tokenErrorsAsOAuth(new URL(tokenEndpoint).href);
  config.timeout = PROVIDER_TIMEOUT_SECONDS;
  if (allowInsecureHttp) client.allowInsecureRequests(config);

  async function get<T>(accessToken: string, path: string, schema: z.ZodType<T>): Promise<T> {
    const headers = new Headers({ accept: 'application/vnd.github+json', 'x-github-api-version': '2022-11-28' });
    const res = await client.fetchProtectedResource(config, accessToken, new URL(api + path), 'GET', undefined, headers);
    if (!res.ok) throw new Error(`GitHub API ${path} answered ${res.status}`);
    return schema.parse(await res.json());
  }

  return {
    id: p.id,

    async authorizationUrl({ redirectUri, state, codeChallenge }) {
      return client.buildAuthorizationUrl(config, {
        redirect_uri: redirectUri,
        scope: p.scopes.join(' '),
        state,
        code_challenge: codeChallenge,
        code_challenge_method: 'S256',
      });
    },

    async identify(callbackUrl, checks): Promise<ExternalIdentity> {
      const tokens = await client.authorizationCodeGrant(config, callbackUrl, { pkceCodeVerifier: checks.codeVerifier, expectedState: checks.state });
      const user = await get(tokens.access_token, '/user', githubUser);
      const emails = await get(tokens.access_token, '/user/emails', githubEmails);
      const chosen = emails.find((e) => e.primary && e.verified) ?? emails.find((e) => e.verified) ?? emails.find((e) => e.primary);
      return {
        subject: String(user.id),
        email: chosen?.email ?? user.email ?? null,
        emailVerified: chosen?.verified ?? false,
        name: user.name?.trim() || user.login,
      };
    },
  };
}

/**
 * GitHub answers a bad token request with 200 and an `error` field, and calls
 * a bad or expired code `bad_verification_code`. Give such answers the 400 and
 * the RFC 6749 `invalid_grant` an OAuth client expects.
 */
function tokenErrorsAsOAuth(tokenEndpoint: string): client.CustomFetch {
  return async (url, options) => {
    const res = await fetch(url, options as RequestInit);
    if (url !== tokenEndpoint || res.status !== 200) return res;
    const body = (await res.clone().json().catch(() => undefined)) as { error?: unknown } | undefined;
    if (!body || typeof body.error !== 'string') return res;
    const error = body.error === 'bad_verification_code' ? 'invalid_grant' : body.error;
    return Response.json({ ...body, error }, { status: 400 });
  };
}
