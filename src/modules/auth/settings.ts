import { z } from 'zod';
import { ConfigError } from '../../errors.ts';
import { envBool, envInt, envSeconds, MAX_TIMER_SECONDS } from '../../platform/config/env.ts';

export interface OAuthProviderConfig {
  id: string;
  kind: 'oidc' | 'github';
  issuer?: string;
  clientId: string;
  clientSecret: string;
  scopes: string[];
  /** GitHub only: where its web and API endpoints live. */
  baseUrl?: string;
  apiUrl?: string;
}

export interface AuthSettings {
  /** `iss` of access tokens: PUBLIC_URL when set, else a constant, so tokens survive a port change. */
  issuer: string;
  accessTtl: number;
  refreshTtl: number;
  reuseGrace: number;
  emailTokenTtl: number;
  resetTokenTtl: number;
  requireEmailVerification: boolean;
  rateLimit: { perIp: number; perAccount: number; windowSeconds: number };
  oauth: { providers: OAuthProviderConfig[]; allowInsecureHttp: boolean };
}

const bool = envBool;


const oauthClient = (prefix: string) => ({
  [`${prefix}_CLIENT_ID`]: z.string().min(1).optional(),
  [`${prefix}_CLIENT_SECRET`]: z.string().min(1).optional(),
});

/** The env fields of sign-in: token lifetimes, auth rate limits, OAuth providers. */
export const authEnv = {
  ACCESS_TOKEN_TTL_SECONDS: envSeconds(1).default(900),
  REFRESH_TOKEN_TTL_SECONDS: envSeconds(1).default(60 * 60 * 24 * 30),
  REFRESH_REUSE_GRACE_SECONDS: envSeconds(0).default(10),
  EMAIL_TOKEN_TTL_SECONDS: envSeconds(1).default(60 * 60 * 24),
  RESET_TOKEN_TTL_SECONDS: envSeconds(1).default(60 * 60),
  REQUIRE_EMAIL_VERIFICATION: bool.default(false),
  AUTH_RATE_LIMIT_PER_IP: envInt(1, 1e9).default(30),
  AUTH_RATE_LIMIT_PER_ACCOUNT: envInt(1, 1e9).default(10),
  // A rate limiter's window is a timer in the in-process limiter.
  AUTH_RATE_LIMIT_WINDOW_SECONDS: envSeconds(1, MAX_TIMER_SECONDS).default(900),
  OIDC_ISSUER: z.url().optional(),
  OIDC_NAME: z.string().default('oidc'),
  ...oauthClient('OIDC'),
  ...oauthClient('GOOGLE'),
  ...oauthClient('MICROSOFT'),
  MICROSOFT_TENANT: z.string().default('common'),
  ...oauthClient('GITHUB'),
  GITHUB_BASE_URL: z.url().default('https://github.com'),
  GITHUB_API_URL: z.url().default('https://api.github.com'),
  OAUTH_ALLOW_INSECURE_HTTP: bool.default(false),
};

const authEnvObject = z.object(authEnv);
type AuthEnv = z.output<typeof authEnvObject> & { PUBLIC_URL?: string };

export function authSettings(e: AuthEnv): AuthSettings {
  return {
    issuer: e.PUBLIC_URL ? e.PUBLIC_URL.replace(/\/$/, '') : 'urn:parley',
    accessTtl: e.ACCESS_TOKEN_TTL_SECONDS,
    refreshTtl: e.REFRESH_TOKEN_TTL_SECONDS,
    reuseGrace: e.REFRESH_REUSE_GRACE_SECONDS,
    emailTokenTtl: e.EMAIL_TOKEN_TTL_SECONDS,
    resetTokenTtl: e.RESET_TOKEN_TTL_SECONDS,
    requireEmailVerification: e.REQUIRE_EMAIL_VERIFICATION,
    rateLimit: {
      perIp: e.AUTH_RATE_LIMIT_PER_IP,
      perAccount: e.AUTH_RATE_LIMIT_PER_ACCOUNT,
      windowSeconds: e.AUTH_RATE_LIMIT_WINDOW_SECONDS,
    },
    oauth: { providers: oauthProviders(e), allowInsecureHttp: e.OAUTH_ALLOW_INSECURE_HTTP },
  };
}

function oauthProviders(e: AuthEnv): OAuthProviderConfig[] {
  const providers: OAuthProviderConfig[] = [];
  const creds = (prefix: string) => {
    const id = e[`${prefix}_CLIENT_ID` as keyof typeof e] as string | undefined;
    const secret = e[`${prefix}_CLIENT_SECRET` as keyof typeof e] as string | undefined;
    if (!id && !secret) return undefined;
    if (!id || !secret) {
      throw new ConfigError(`Invalid configuration:\n  ${prefix}_CLIENT_ID and ${prefix}_CLIENT_SECRET must be set together`);
    }
    return { clientId: id, clientSecret: secret };
  };
  const oidc = creds('OIDC');
  if (oidc) {
    if (!e.OIDC_ISSUER) throw new ConfigError('Invalid configuration:\n  OIDC_ISSUER: required when OIDC_CLIENT_ID is set');
    providers.push({ id: e.OIDC_NAME, kind: 'oidc', issuer: e.OIDC_ISSUER, scopes: ['openid', 'email', 'profile'], ...oidc });
  }
  const google = creds('GOOGLE');
  if (google) providers.push({ id: 'google', kind: 'oidc', issuer: 'https://accounts.google.com', scopes: ['openid', 'email', 'profile'], ...google });
  const microsoft = creds('MICROSOFT');
  if (microsoft) {
    providers.push({
      id: 'microsoft',
      kind: 'oidc',
      issuer: `https://login.microsoftonline.com/${e.MICROSOFT_TENANT}/v2.0`,
      scopes: ['openid', 'email', 'profile'],
      ...microsoft,
    });
  }
  const github = creds('GITHUB');
  if (github) providers.push({ id: 'github', kind: 'github', scopes: ['read:user', 'user:email'], baseUrl: e.GITHUB_BASE_URL, apiUrl: e.GITHUB_API_URL, ...github });
  return providers;
}
