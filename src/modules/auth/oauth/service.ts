import * as client from 'openid-client';
import { z } from 'zod';
import { AppError, Conflict, Forbidden, NotFound, UpstreamFailed, ValidationError } from '../../../errors.ts';
import { inTransaction, type Db } from '../../../platform/db/database.ts';
import type { Logger } from '../../../platform/observability/logger.ts';
import { clip, oneLine } from '../../../platform/text.ts';
import type { Audit, AuditContext } from '../../audit/index.ts';
import { normalizeEmail, type UsersService } from '../../users/index.ts';
import type { UserRow } from '../../users/index.ts';
import type { AuthService, LoginResult } from '../service.ts';
import type { DeviceInfo } from '../sessions.ts';
import type { ExternalIdentity, OAuthProvider, OAuthProviders } from './providers.ts';
import { createOAuthRepository } from './repository.ts';

const FLOW_TTL_SECONDS = 600;

type Context = DeviceInfo & AuditContext;

export interface OAuthServiceDeps {
  db: Db;
  providers: OAuthProviders;
  users: UsersService;
  auth: AuthService;
  audit: Audit;
  logger: Logger;
  publicUrl: string;
  /** Where a flow may send the browser back to. */
  allowedOrigins: string[];
  requireEmailVerification: boolean;
}

const invalidState = () => ValidationError('The sign-in link is invalid, expired or was already used; start again', 'invalid_oauth_state');

/**
 * Sign-in through OAuth 2 / OpenID Connect providers: the authorization code
 * flow with PKCE (S256), state and nonce, kept server-side and single use.
 * An identity is matched by its link first, then by an email both the
 * provider and Parley have verified; otherwise it gets a new account.
 */
export function createOAuthService(d: OAuthServiceDeps) {
  const repo = createOAuthRepository(d.db);

  function providerOf(id: string): OAuthProvider {
    const provider = d.providers.get(id);
    if (!provider) throw NotFound(`Sign-in provider "${id}"`, 'oauth_provider_not_found');
    return provider;
  }

  const callbackUrl = (providerId: string) => `${d.publicUrl}/v1/auth/oauth/${encodeURIComponent(providerId)}/callback`;

  /** A provider that rejects the code is the caller's 400; any other failure of it is a 502. */
  async function fromProvider<T>(providerId: string, call: () => Promise<T>): Promise<T> {
    try {
      return await call();
    } catch (err) {
      if (err instanceof AppError) throw err;
      if (err instanceof client.ResponseBodyError && err.error === 'invalid_grant') {
        throw ValidationError('The provider rejected the authorization code; start the sign-in again', 'oauth_code_rejected');
      }
      d.logger.warn({ err, provider: providerId }, 'OAuth provider call failed');
      throw UpstreamFailed(`Sign-in with ${providerId} failed on the provider's side; try again later`, 'oauth_provider_failed');
    }
  }

  async function linkedOrNewUser(providerId: string, identity: ExternalIdentity, ctx: Context, gate?: SignInGate): Promise<UserRow> {
    const linked = await repo.account(providerId, identity.subject);
    if (linked) return d.users.require(linked.userId);
    const email = usableEmail(identity.email);
    if (!email) throw ValidationError(`${providerId} did not share an email address, which an account needs`, 'oauth_email_missing');
    const existing = await d.users.byEmail(email);
    if (existing) return linkByEmail(existing, providerId, identity, email, ctx);

    await gate?.signUp();
    const method = `oauth:${providerId}`;
    return inTransaction(d.db, async (tx) => {
      const user = await d.users.create({ email, passwordHash: null, name: providerName(identity.name), emailVerified: identity.emailVerified }, tx);
      if (!(await repo.link({ userId: user.id, provider: providerId, subject: identity.subject, email }, tx))) throw linkRace();
      await d.audit.record({ action: 'user.registered', userId: user.id, ...ctx, metadata: { method } }, tx);
      return user;
    });
  }

  /**
   * Joins an identity to the account that has its email, only when the
   * provider vouches for the address and the account's owner proved it too.
   * Without the second check, someone who signed up with another person's
   * address (never verifying it) would share the account once that person
   * signs in with the provider, and keep their password.
   */
  async function linkByEmail(user: UserRow, providerId: string, identity: ExternalIdentity, email: string, ctx: Context): Promise<UserRow> {
    if (!identity.emailVerified) {
      throw Conflict(`An account with this email already exists, and ${providerId} does not confirm the address is yours; sign in another way`, 'email_not_verified_by_provider');
    }
    if (user.disabledAt) throw Forbidden('This account is disabled', 'account_disabled');
    if (!user.emailVerifiedAt) {
      throw Conflict('An account with this email exists but its address was never verified; sign in to it and verify the email first', 'account_email_not_verified');
    }
    await inTransaction(d.db, async (tx) => {
      if (!(await repo.link({ userId: user.id, provider: providerId, subject: identity.subject, email }, tx))) throw linkRace();
      await d.audit.record({ action: 'oauth.linked', userId: user.id, ...ctx, metadata: { provider: providerId, subject: identity.subject, via: 'verified_email' } }, tx);
    });
    return user;
  }

  return {
    /** Ids of the configured providers. */
    providers: (): string[] => [...d.providers.keys()],

    /** Opens a flow: the provider URL to send the browser to, and the state that identifies the flow. */
    async start(providerId: string, redirectTo?: string): Promise<{ url: URL; state: string; expiresIn: number }> {
      const provider = providerOf(providerId);
      const target = redirectTo === undefined ? null : allowedRedirect(redirectTo, d.allowedOrigins);
      const state = client.randomState();
      const nonce = client.randomNonce();
      const codeVerifier = client.randomPKCECodeVerifier();
      const codeChallenge = await client.calculatePKCECodeChallenge(codeVerifier);
      const url = await fromProvider(provider.id, () => provider.authorizationUrl({ redirectUri: callbackUrl(provider.id), state, nonce, codeChallenge }));
      await repo.pruneFlows();
      await repo.saveFlow({ state, provider: provider.id, codeVerifier, nonce, redirectTo: target, expiresAt: new Date(Date.now() + FLOW_TTL_SECONDS * 1000) });
      return { url, state, expiresIn: FLOW_TTL_SECONDS };
    },

    /**
     * Finishes a flow from the provider's redirect (`params` is its query string):
     * a session or MFA challenge, and where the flow asked to go afterwards.
     * A browser flow (one with redirectTo) must end in the browser that started
     * it, which presents the state back from its flow cookie as `browserState`;
     * else anyone could mail a victim a callback link that signs their browser
     * into the sender's account.
     */
    async complete(
      providerId: string,
      params: URLSearchParams,
      ctx: Context,
      browserState?: string,
      gate?: SignInGate,
    ): Promise<{ result: LoginResult; redirectTo: string | null }> {
      const provider = providerOf(providerId);
      const state = params.get('state');
      const flow = state ? await repo.takeFlow(state) : undefined;
      if (!flow || flow.provider !== provider.id || flow.expiresAt <= new Date()) throw invalidState();
      if (flow.redirectTo && browserState !== flow.state) {
        throw ValidationError('This sign-in was started in another browser; start again here', 'oauth_browser_mismatch');
      }
      const error = params.get('error');
      if (error) {
        const description = params.get('error_description')?.slice(0, 300);
        throw ValidationError(`${provider.id} did not authorize the sign-in${description ? `: ${description}` : ''}`, 'oauth_provider_error', { providerError: error.slice(0, 100) });
      }
      if (!params.get('code')) throw ValidationError('The provider sent no authorization code', 'oauth_code_missing');

      const callback = new URL(callbackUrl(provider.id));
      callback.search = params.toString();
      const identity = await fromProvider(provider.id, () => provider.identify(callback, flow));
      const user = await linkedOrNewUser(provider.id, identity, ctx, gate);
      await gate?.signIn(user);
      if (user.disabledAt) throw Forbidden('This account is disabled', 'account_disabled');
      if (d.requireEmailVerification && !user.emailVerifiedAt) throw Forbidden('Verify your email before signing in', 'email_not_verified');
      return { result: await d.auth.signInOrChallenge(user, `oauth:${provider.id}`, ctx), redirectTo: flow.redirectTo };
    },
  };
}

export type OAuthService = ReturnType<typeof createOAuthService>;

/** What may refuse a sign-in (bans, in the limits module): before an account is made, and before a session is. */
export interface SignInGate {
  signUp(): Promise<void>;
  signIn(user: UserRow): Promise<void>;
}

const linkRace = () => Conflict('This identity was linked by another sign-in at the same moment; try again', 'oauth_account_conflict');

/** The name a provider gave, as a display name must be (one line, at most 200 characters, whole characters); null when nothing is left. */
function providerName(name: string | null | undefined): string | null {
  const line = clip(oneLine(name ?? '').trim(), 200).trim();
  return line || null;
}

function usableEmail(email: string | null): string | null {
  return email && z.email().max(320).safeParse(email.trim()).success ? normalizeEmail(email) : null;
}

/** Only absolute http(s) URLs on an allowed origin, so a sign-in link cannot send anyone elsewhere. */
export function allowedRedirect(value: string, allowedOrigins: string[]): string {
  let url: URL | undefined;
  try {
    url = new URL(value);
  } catch {
    url = undefined;
  }
  if (!url || !['http:', 'https:'].includes(url.protocol) || url.username || url.password || !allowedOrigins.includes(url.origin)) {
    throw ValidationError('redirectTo must be a URL on one of the allowed origins', 'redirect_not_allowed');
  }
  return url.href;
}
