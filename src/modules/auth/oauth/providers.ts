import { ConfigError } from '../../../errors.ts';
import type { AuthSettings, OAuthProviderConfig } from '../settings.ts';
import { githubProvider } from './github.ts';
import { oidcProvider } from './oidc.ts';

/** Who the provider says signed in. */
export interface ExternalIdentity {
  /** The provider's stable id for the user (`sub`, GitHub's numeric id). */
  subject: string;
  email: string | null;
  /** True only when the provider vouches that the user controls `email`. */
  emailVerified: boolean;
  name: string | null;
}

/** The server-side half of a flow, handed back to the provider to finish it. */
export interface FlowChecks {
  state: string;
  codeVerifier: string;
  nonce: string;
}

export interface AuthorizationParams {
  redirectUri: string;
  state: string;
  nonce: string;
  codeChallenge: string;
}

/**
 * One configured sign-in provider. Methods throw openid-client's errors on
 * provider failures; the service turns those into problems.
 */
export interface OAuthProvider {
  id: string;
  authorizationUrl(params: AuthorizationParams): Promise<URL>;
  /** Exchanges the code carried by `callbackUrl` (with PKCE, state and nonce checks) and reads the identity. */
  identify(callbackUrl: URL, checks: FlowChecks): Promise<ExternalIdentity>;
}

export type OAuthProviders = ReadonlyMap<string, OAuthProvider>;

/** The configured providers by id. Throws ConfigError for plain-http endpoints unless explicitly allowed. */
export function createOAuthProviders(oauth: AuthSettings['oauth']): OAuthProviders {
  const providers = new Map<string, OAuthProvider>();
  for (const p of oauth.providers) {
    if (!oauth.allowInsecureHttp) requireHttps(p);
    providers.set(p.id, p.kind === 'github' ? githubProvider(p, oauth.allowInsecureHttp) : oidcProvider(p, oauth.allowInsecureHttp));
  }
  return providers;
}

function requireHttps(p: OAuthProviderConfig) {
  for (const url of [p.issuer, p.baseUrl, p.apiUrl]) {
    if (url && new URL(url).protocol !== 'https:') {
      throw new ConfigError(`Invalid configuration:\n  OAuth provider "${p.id}": ${url} is not https (set OAUTH_ALLOW_INSECURE_HTTP=true only for local testing)`);
    }
  }
}
