import * as client from 'openid-client';
import type { OAuthProviderConfig } from '../settings.ts';
import type { ExternalIdentity, OAuthProvider } from './providers.ts';

export const PROVIDER_TIMEOUT_SECONDS = 10;
const ENTRA_ID_ORIGIN = 'https://login.microsoftonline.com';

/**
 * An OpenID Connect provider found by discovery: the generic one from
 * OIDC_ISSUER and the Google and Microsoft presets. For Microsoft's
 * multi-tenant endpoints ("common", "organizations") the metadata issuer is a
 * `{tenantid}` template; openid-client recognises login.microsoftonline.com and
 * checks each ID token's `iss` against the template filled with its `tid`.
 */
export function oidcProvider(p: OAuthProviderConfig, allowInsecureHttp: boolean): OAuthProvider {
  const issuer = new URL(p.issuer!);
  const entraId = issuer.origin === ENTRA_ID_ORIGIN;
  let configuration: Promise<client.Configuration> | undefined;

  // Discovered on first use, so a provider that is down does not stop Parley from starting; a failure is retried next time.
  const discover = () =>
    (configuration ??= client
      .discovery(issuer, p.clientId, p.clientSecret, clientSecretAuth(p.clientSecret), {
        execute: allowInsecureHttp ? [client.allowInsecureRequests] : [],
        timeout: PROVIDER_TIMEOUT_SECONDS,
      })
      .catch((err: unknown) => {
        configuration = undefined;
        throw err;
      }));

  return {
    id: p.id,

    async authorizationUrl({ redirectUri, state, nonce, codeChallenge }) {
      return client.buildAuthorizationUrl(await discover(), {
        redirect_uri: redirectUri,
        scope: p.scopes.join(' '),
        state,
        nonce,
        code_challenge: codeChallenge,
        code_challenge_method: 'S256',
      });
    },

    async identify(callbackUrl, checks): Promise<ExternalIdentity> {
      const config = await discover();
      const tokens = await client.authorizationCodeGrant(config, callbackUrl, {
        pkceCodeVerifier: checks.codeVerifier,
        expectedState: checks.state,
        expectedNonce: checks.nonce,
        idTokenExpected: true,
      });
      const claims = tokens.claims()!;
      // Some providers put the email only in userinfo; take it and its verification from the same source.
      const source: Record<string, unknown> =
        typeof claims.email !== 'string' && config.serverMetadata().userinfo_endpoint
          ? await client.fetchUserInfo(config, tokens.access_token, claims.sub)
          : claims;
      return {
        subject: claims.sub,
        email: typeof source.email === 'string' ? source.email : null,
        emailVerified: emailVerifiedBy(source, entraId),
        name: displayName(claims) ?? displayName(source),
      };
    },
  };
}

const truthy = (v: unknown) => v === true || v === 'true' || v === 1 || v === '1';

/**
 * Whether the provider vouches for the email. Entra ID sends no
 * `email_verified` and lets tenant admins set any `email`; only its optional
 * `xms_edov` claim (email domain owner verified) is such an assertion.
 */
export function emailVerifiedBy(claims: Record<string, unknown>, entraId: boolean): boolean {
  return entraId ? truthy(claims.xms_edov) : truthy(claims.email_verified);
}

function displayName(c: Record<string, unknown>): string | null {
  if (typeof c.name === 'string' && c.name.trim()) return c.name.trim();
  const parts = [c.given_name, c.family_name].filter((s): s is string => typeof s === 'string' && s.trim() !== '');
  return parts.length ? parts.join(' ') : null;
}

/**
 * client_secret_post, unless the provider's metadata says only
 * client_secret_basic (or says nothing, where OIDC Discovery defaults to it).
 * Post is preferred because Basic form-encodes id and secret first (RFC 6749
 * §2.3.1), which many servers do not decode: "my-app" arrives as "my%2Dapp".
 */
export function clientSecretAuth(secret: string): client.ClientAuth {
  const basic = client.ClientSecretBasic(secret);
  const post = client.ClientSecretPost(secret);
  return (as, c, body, headers) => {
    const methods = as.token_endpoint_auth_methods_supported;
    const useBasic = !methods || (methods.includes('client_secret_basic') && !methods.includes('client_secret_post'));
    (useBasic ? basic : post)(as, c, body, headers);
  };
}
