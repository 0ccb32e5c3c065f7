import { Forbidden, RateLimited, ValidationError } from '../../errors.ts';
import { inTransaction, type Db } from '../../platform/db/database.ts';
import type { Mailer } from '../../platform/mail/mailer.ts';
import type { Logger } from '../../platform/observability/logger.ts';
import type { JobQueue } from '../../platform/queue/queue.ts';
import type { Limiter } from '../../platform/ratelimit/limiter.ts';
import type { ApiKeys } from '../api-keys/index.ts';
import type { Audit, AuditContext } from '../audit/index.ts';
import type { UserRow } from '../users/index.ts';
import { normalizeEmail, type UsersService } from '../users/index.ts';
import { accessRevoked } from './access-revoked.ts';
import { emails } from './emails.ts';
import type { KnownDevices } from './devices.ts';
import type { Mfa } from './mfa.ts';
import { createOAuthRepository } from './oauth/repository.ts';
import type { OneTimeTokens } from './one-time-tokens.ts';
import type { PasswordGuard } from './password-guard.ts';
import { passwords } from './passwords.ts';
import { reclaimed } from './reclaim.ts';
import type { Sessions } from './sessions.ts';

/** Where the links in the emails point: pages of the web app, served at the public URL, that POST the token back. */
export const VERIFY_EMAIL_PATH = '/verify-email';
export const RESET_PASSWORD_PATH = '/reset-password';

export interface EmailFlowsDeps {
  db: Db;
  users: UsersService;
  sessions: Sessions;
  tokens: OneTimeTokens;
  mailer: Mailer;
  audit: Audit;
  logger: Logger;
  publicUrl: string;
  emailTokenTtl: number;
  resetTokenTtl: number;
  /** Least time between two emails of one kind to one account, against mail bombing. */
  resendIntervalSeconds: number;
  /** The per-account password failure counter sign-in uses (keyed by email). */
  passwordGuard: PasswordGuard;
  /** A reset that first proves the address deletes the keys made before it (see resetPassword). */
  apiKeys: Pick<ApiKeys, 'deleteAllOf' | 'forgetUser'>;
  /** …and the second factors (TOTP, backup codes) enrolled before it… */
  mfa: Pick<Mfa, 'removeAll'>;
  /** …and the devices signed in from before it, so a sign-in from one of them is news again. */
  devices: Pick<KnownDevices, 'forgetAll'>;
  /**
   * …and, through `user.reclaimed` (reclaim.ts), the places other modules send the account's data to. It queues
   * `user.access_revoked` too, for the sessions (and keys) a password change or reset ends.
   */
  queue: Pick<JobQueue, 'enqueue'>;
}

const invalidToken = () => ValidationError('This link is invalid, has expired or was already used', 'invalid_token');

/** Email verification, password reset by email, and password change. */
export function createEmailFlows(d: EmailFlowsDeps) {
  const link = (path: string, token: string) => `${d.publicUrl}${path}?token=${encodeURIComponent(token)}`;

  /** Seconds until another email of this kind may go to the user; 0 when it may go now. */
  async function waitBeforeResend(userId: string, purpose: 'email_verification' | 'password_reset'): Promise<number> {
    const last = await d.tokens.lastIssuedAt(userId, purpose);
    if (!last) return 0;
    return Math.max(0, d.resendIntervalSeconds - (Date.now() - last.getTime()) / 1000);
  }

  /** Mail that tells about something already done: a delivery failure is logged, never undoes it. */
  function notify(user: UserRow, how: 'reset' | 'change') {
    const message = emails.passwordChanged({ name: user.name, how, resetUrl: `${d.publicUrl}${RESET_PASSWORD_PATH}` });
    d.mailer.send({ to: user.email, ...message }).catch((err) => d.logger.warn({ err, userId: user.id }, 'password-changed email failed'));
  }

  async function sendVerification(user: UserRow): Promise<void> {
    const token = await d.tokens.issue(user.id, 'email_verification', d.emailTokenTtl);
    const message = emails.verifyEmail({ name: user.name, link: link(VERIFY_EMAIL_PATH, token), ttlSeconds: d.emailTokenTtl });
    await d.mailer.send({ to: user.email, ...message });
  }

  async function sendReset(email: string, ctx: AuditContext): Promise<void> {
    const user = await d.users.byEmail(email);
    if (!user || user.disabledAt) return;
    // Silently skipped when one was just sent: saying so would tell that the account exists.
    const emailed = (await waitBeforeResend(user.id, 'password_reset')) === 0;
    if (emailed) {
      const token = await d.tokens.issue(user.id, 'password_reset', d.resetTokenTtl);
      const message = emails.passwordReset({ name: user.name, link: link(RESET_PASSWORD_PATH, token), ttlSeconds: d.resetTokenTtl });
      await d.mailer.send({ to: user.email, ...message });
    }
    await d.audit.record({ action: 'password.reset_requested', userId: user.id, ...ctx, metadata: { emailed } });
  }

  return {
    /** After a password sign-up. A mail failure is logged, not thrown: the account exists and can ask again. */
    async onRegistered(user: UserRow): Promise<void> {
      await sendVerification(user).catch((err) => d.logger.warn({ err, userId: user.id }, 'verification email failed'));
    },

    async resendVerification(userId: string): Promise<void> {
      const user = await d.users.require(userId);
      if (user.emailVerifiedAt) return;
      const wait = await waitBeforeResend(user.id, 'email_verification');
      if (wait > 0) throw RateLimited(wait, 'A verification email was sent moments ago; check your inbox or try again shortly', 'email_rate_limited');
      await sendVerification(user);
    },

    async verifyEmail(token: string, ctx: AuditContext): Promise<void> {
      await inTransaction(d.db, async (tx) => {
        const userId = await d.tokens.consume(token, 'email_verification', tx);
        if (!userId) throw invalidToken();
        const user = await d.users.byId(userId, tx);
        if (!user) throw invalidToken();
        if (user.emailVerifiedAt) return;
        await d.users.markEmailVerified(userId, tx);
        await d.audit.record({ action: 'user.email_verified', userId, ...ctx }, tx);
      });
    },

    /**
     * Starts a reset without waiting for it: the caller answers the same,
     * equally fast, whether or not the address has an account.
     */
    requestPasswordReset(email: string, ctx: AuditContext): void {
      sendReset(normalizeEmail(email), ctx).catch((err) => d.logger.error({ err }, 'password reset email failed'));
    },

    /** Sets a new password with a reset token, and signs the user out everywhere. */
    async resetPassword(token: string, password: string, ctx: AuditContext): Promise<void> {
      // Look first, use later: a password the rules refuse must not burn the token.
      const userId = await d.tokens.peek(token, 'password_reset');
      const user = userId ? await d.users.byId(userId) : undefined;
      if (!user) throw invalidToken();
      if (user.disabledAt) throw Forbidden('This account is disabled', 'account_disabled');
      passwords.check(password, user.email);
      const passwordHash = await passwords.hash(password);
      let keysDeleted: string[] = [];
      await inTransaction(d.db, async (tx) => {
        if ((await d.tokens.consume(token, 'password_reset', tx)) !== user.id) throw invalidToken();
        await d.tokens.voidAll(user.id, 'password_reset', tx);
        await d.users.setPassword(user.id, passwordHash, tx);
        // The link came to the inbox, which proves the address as well as a verification link would.
        // What was made before anyone proved it goes: whoever signed up with someone else's address (with a
        // password, or through an OAuth provider that did not vouch for it) must not keep a way in once the
        // inbox's owner takes the account: not a linked identity, nor an API key, nor a second factor that
        // would lock the owner out (sessions all end below); nor a device whose sign-ins would go unannounced;
        // nor a place the owner's data is sent to (webhook endpoints, browsers, Slack, a phone, MCP servers: `user.reclaimed`).
        let unlinked: string[] = [];
        let factorsRemoved: string[] = [];
        let devicesForgotten = 0;
        if (!user.emailVerifiedAt) {
          await d.users.markEmailVerified(user.id, tx);
          unlinked = await createOAuthRepository(tx).unlinkAll(user.id);
          keysDeleted = await d.apiKeys.deleteAllOf(user.id, tx);
          factorsRemoved = await d.mfa.removeAll(user.id, tx);
          devicesForgotten = await d.devices.forgetAll(user.id, tx);
          await reclaimed.announce(d.queue, { userId: user.id, provedAt: new Date().toISOString() }, tx);
        }
        const count = await d.sessions.revokeAll(user.id, 'password_reset', undefined, tx);
        if (count || keysDeleted.length) await accessRevoked.announce(d.queue, { userId: user.id }, tx);
        const metadata = {
          sessionsRevoked: count,
          ...(unlinked.length ? { unlinkedProviders: unlinked } : {}),
          ...(keysDeleted.length ? { apiKeysDeleted: keysDeleted } : {}),
          ...(factorsRemoved.length ? { mfaFactorsRemoved: factorsRemoved } : {}),
          ...(devicesForgotten ? { knownDevicesForgotten: devicesForgotten } : {}),
        };
        await d.audit.record({ action: 'password.reset', userId: user.id, ...ctx, metadata }, tx);
      });
      if (keysDeleted.length) await d.apiKeys.forgetUser(user.id);
      // Whoever locked sign-in by guessing is locked out by the new password anyway.
      await d.passwordGuard.reset(user.email);
      notify(user, 'reset');
    },

    /** Changes the password given the current one; the caller's session stays, every other one ends. */
    async changePassword(caller: { userId: string; sessionId?: string }, input: { currentPassword: string; newPassword: string }, ctx: AuditContext): Promise<void> {
      const user = await d.users.require(caller.userId);
      if (!user.passwordHash) throw ValidationError('This account has no password yet; set one through password reset', 'no_password');
      if (!(await d.passwordGuard.verify(user.email, user.passwordHash, input.currentPassword))) {
        throw Forbidden('Current password is incorrect', 'invalid_password');
      }
      passwords.check(input.newPassword, user.email);
      if (input.newPassword === input.currentPassword) throw ValidationError('The new password must differ from the current one', 'weak_password');
      const passwordHash = await passwords.hash(input.newPassword);
      await inTransaction(d.db, async (tx) => {
        await d.users.setPassword(user.id, passwordHash, tx);
        const count = await d.sessions.revokeAll(user.id, 'password_changed', caller.sessionId, tx);
        if (count) await accessRevoked.announce(d.queue, { userId: user.id }, tx);
        // An outstanding reset link would otherwise undo the change.
        await d.tokens.voidAll(user.id, 'password_reset', tx);
        await d.audit.record({ action: 'password.changed', userId: user.id, ...ctx, metadata: { sessionsRevoked: count } }, tx);
      });
      notify(user, 'change');
    },
  };
}

export type EmailFlows = ReturnType<typeof createEmailFlows>;
