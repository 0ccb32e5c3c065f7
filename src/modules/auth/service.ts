import { Forbidden, Unauthorized } from '../../errors.ts';
import type { Announce } from '../../platform/bus/bus.ts';
import { inTransaction, type Db } from '../../platform/db/database.ts';
import type { JobQueue } from '../../platform/queue/queue.ts';
import type { Audit, AuditContext } from '../audit/index.ts';
import { normalizeEmail, toPublicUser, type UsersService } from '../users/index.ts';
import type { UserRow } from '../users/index.ts';
import { accessRevoked } from './access-revoked.ts';
import { ACCESS_AUDIENCE } from './authenticator.ts';
import type { Mfa, MfaProof } from './mfa.ts';
import type { MfaChallenges } from './mfa-challenges.ts';
import type { PasswordGuard } from './password-guard.ts';
import { passwords } from './passwords.ts';
import type { KnownDevices } from './devices.ts';
import type { DeviceInfo, Sessions } from './sessions.ts';
import type { SigningKeys } from './signing-keys.ts';

export interface TokenPair {
  tokenType: 'Bearer';
  accessToken: string;
  expiresIn: number;
  refreshToken: string;
  sessionId: string;
  user: ReturnType<typeof toPublicUser>;
}

export type LoginResult = ({ mfaRequired: false } & TokenPair) | { mfaRequired: true; mfaToken: string; expiresIn: number };

export interface AuthServiceDeps {
  db: Db;
  /** Queues `user.access_revoked` in the transaction that revokes a session. */
  queue: Pick<JobQueue, 'enqueue'>;
  users: UsersService;
  sessions: Sessions;
  keys: SigningKeys;
  mfa: Mfa;
  /** The second step of a sign-in when two-factor is on. */
  challenges: MfaChallenges;
  audit: Audit;
  issuer: string;
  accessTtl: number;
  requireEmailVerification: boolean;
  /** Counts failed sign-ins per account (keyed by email, whether or not it exists). */
  passwordGuard: PasswordGuard;
  /** Called after a password registration, e.g. to send the verification email. */
  onRegistered?: (user: UserRow) => Promise<void>;
  /** The devices each user signed in from: a new one (for a user who had others) is announced as `session.new_device`. */
  devices: KnownDevices;
  announce: Announce;
}

type Context = DeviceInfo & AuditContext;

/** Password sign-up and sign-in, token issue and refresh, sign-out. */
export function createAuthService(d: AuthServiceDeps) {
  const issueAccessToken = (user: UserRow, sessionId: string) =>
    d.keys.sign({ sid: sessionId, role: user.role }, { subject: user.id, audience: ACCESS_AUDIENCE, issuer: d.issuer, ttlSeconds: d.accessTtl });

  async function tokensFor(user: UserRow, sessionId: string, refreshToken: string): Promise<TokenPair> {
    return {
      tokenType: 'Bearer',
      accessToken: await issueAccessToken(user, sessionId),
      expiresIn: d.accessTtl,
      refreshToken,
      sessionId,
      user: toPublicUser(user),
    };
  }

  /** Revokes a session, announced with it: sockets opened with its access tokens close at once, on every instance. */
  const revokeOne = (userId: string, sessionId: string, reason: string) =>
    inTransaction(d.db, async (tx) => {
      const revoked = await d.sessions.revoke(userId, sessionId, reason, tx);
      if (revoked) await accessRevoked.announce(d.queue, { userId }, tx);
      return revoked;
    });

  const service = {
    /** Opens a session for a user who has fully authenticated, by whatever method. */
    async signIn(user: UserRow, method: string, ctx: Context): Promise<TokenPair> {
      if (user.disabledAt) throw Forbidden('This account is disabled', 'account_disabled');
      const opened = await d.sessions.open(user.id, method, ctx, user.passwordHash);
      if (!opened) throw Unauthorized('The password changed while signing in; sign in again', 'credentials_changed');
      const { session, refreshToken } = opened;
      await d.audit.record({ action: 'user.signed_in', userId: user.id, ...ctx, metadata: { method, sessionId: session.id } });
      // A brand new account's first device (or an account's first since devices were recorded) is not news to anyone.
      const device = await d.devices.seen(user.id, ctx);
      if (device.isNew && device.hadOthers) {
        d.announce('session.new_device', { userId: user.id, sessionId: session.id, method, device: device.description, ip: ctx.ip ?? null, at: session.createdAt.toISOString() });
      }
      return tokensFor(user, session.id, refreshToken);
    },

    async register(input: { email: string; password: string; name?: string | null }, ctx: Context): Promise<TokenPair> {
      const email = normalizeEmail(input.email);
      passwords.check(input.password, email);
      const user = await d.users.create({ email, passwordHash: await passwords.hash(input.password), name: input.name });
      await d.audit.record({ action: 'user.registered', userId: user.id, ...ctx });
      await d.onRegistered?.(user);
      if (d.requireEmailVerification) throw Forbidden('Check your inbox to verify your email, then sign in', 'email_not_verified');
      return service.signIn(user, 'password', ctx);
    },

    /** `admit` may refuse a user whose password was right (a ban) before any session or challenge is made. */
    async login(input: { email: string; password: string }, ctx: Context, admit?: (user: UserRow) => Promise<void>): Promise<LoginResult> {
      const email = normalizeEmail(input.email);
      const user = await d.users.byEmail(email);
      const ok = await d.passwordGuard.verify(email, user?.passwordHash, input.password);
      if (!user || !ok) {
        await d.audit.record({ action: 'user.sign_in_failed', userId: user?.id ?? null, ...ctx, metadata: { reason: 'bad_credentials' } });
        throw Unauthorized('Email or password is incorrect', 'invalid_credentials');
      }
      if (user.disabledAt) throw Forbidden('This account is disabled', 'account_disabled');
      if (d.requireEmailVerification && !user.emailVerifiedAt) throw Forbidden('Verify your email before signing in', 'email_not_verified');
      await admit?.(user);
      return service.signInOrChallenge(user, 'password', ctx);
    },

    /**
     * For a user who passed the first factor, by whatever method: a session, or
     * the MFA challenge when TOTP is on. The token records the method, so the
     * session opened after the challenge can say how the user came in.
     */
    async signInOrChallenge(user: UserRow, method: string, ctx: Context): Promise<LoginResult> {
      if (user.disabledAt) throw Forbidden('This account is disabled', 'account_disabled');
      if (await d.mfa.isEnabled(user.id)) return { mfaRequired: true, ...(await d.challenges.issue(user, method)) };
      return { mfaRequired: false, ...(await service.signIn(user, method, ctx)) };
    },

    /** The user an MFA challenge token was issued to; throws 401 if it is bad, expired or already used. */
    async userForMfaToken(mfaToken: string): Promise<UserRow> {
      return (await d.challenges.open(mfaToken)).user;
    },

    /**
     * The second step of a sign-in: the factor is checked for the user the challenge was issued to, the challenge
     * is spent with it (the account checked again there: disabled or deleted since the first step, it gets what that
     * step would say now), then the session opens. `admit` refuses, as at the first step, a user banned since.
     * Its method names both steps, e.g. `password+totp` or `oauth:github+backup_code`.
     */
    async completeMfaSignIn(input: { mfaToken: string; proof: MfaProof }, ctx: Context, admit?: (user: UserRow) => Promise<void>): Promise<TokenPair> {
      const challenge = await d.challenges.redeem(input.mfaToken, ({ user, spend }) => d.mfa.verifySignIn(user.id, input.proof, ctx, spend));
      // After the code, as the first step admits only after the password: the ban cache is the limits module's, not
      // the transaction's (the session is refused on every request while a ban stands anyway).
      await admit?.(challenge.user);
      return service.signIn(challenge.user, `${challenge.method}+${challenge.result}`, ctx);
    },

    async refresh(refreshToken: string, ctx: Context): Promise<TokenPair> {
      const outcome = await d.sessions.rotate(refreshToken, ctx);
      if (!outcome.ok) {
        if (outcome.reason === 'reused') {
          await d.audit.record({ action: 'session.refresh_reuse_detected', userId: outcome.userId, ...ctx, metadata: { sessionId: outcome.sessionId } });
          throw Unauthorized('Refresh token was already used; the session has been revoked', 'refresh_token_reused');
        }
        if (outcome.reason === 'disabled') throw Unauthorized('Account is disabled', 'account_disabled');
        throw Unauthorized('Refresh token is invalid, expired or revoked', 'invalid_refresh_token');
      }
      const user = await d.users.byId(outcome.userId);
      if (!user) throw Unauthorized('Refresh token is invalid, expired or revoked', 'invalid_refresh_token');
      return tokensFor(user, outcome.sessionId, outcome.refreshToken);
    },

    /** Ends the session a refresh token (or the current access token) belongs to. */
    async logout(target: { sessionId?: string; refreshToken?: string; userId?: string }, ctx: Context): Promise<void> {
      let sessionId = target.sessionId;
      let userId = target.userId;
      if (!sessionId && target.refreshToken) {
        const session = await d.sessions.byRefreshToken(target.refreshToken);
        sessionId = session?.id;
        userId = session?.userId;
      }
      if (!sessionId || !userId) return;
      if (await revokeOne(userId, sessionId, 'logout')) {
        await d.audit.record({ action: 'user.signed_out', userId, ...ctx, metadata: { sessionId } });
      }
    },

    async logoutAll(userId: string, ctx: Context): Promise<number> {
      const count = await inTransaction(d.db, async (tx) => {
        const revoked = await d.sessions.revokeAll(userId, 'logout_all', undefined, tx);
        if (revoked) await accessRevoked.announce(d.queue, { userId }, tx);
        return revoked;
      });
      await d.audit.record({ action: 'session.revoked', userId, ...ctx, metadata: { all: true, count } });
      return count;
    },

    async revokeSession(userId: string, sessionId: string, ctx: Context): Promise<boolean> {
      const revoked = await revokeOne(userId, sessionId, 'revoked_by_user');
      if (revoked) await d.audit.record({ action: 'session.revoked', userId, ...ctx, metadata: { sessionId } });
      return revoked;
    },
  };
  return service;
}

export type AuthService = ReturnType<typeof createAuthService>;
