import { Conflict, Forbidden, NotFound } from '../../errors.ts';
import { inTransaction, type Db } from '../../platform/db/database.ts';
import type { JobQueue } from '../../platform/queue/queue.ts';
import type { Audit, AuditContext } from '../audit/index.ts';
import type { PasswordGuard } from '../auth/password-guard.ts';
import { accessRevoked } from './access-revoked.ts';
import { createOAuthRepository } from './oauth/repository.ts';
import type { UserRow, UsersService } from '../users/index.ts';

/** How recently a password-less user must have signed in to do something irreversible. */
export const REAUTH_WINDOW_MS = 10 * 60_000;

export interface Caller {
  userId: string;
  /** When the caller's session was opened; absent for API keys. */
  sessionCreatedAt?: Date;
}

export interface AccountDeps {
  db: Db;
  users: UsersService;
  audit: Audit;
  passwordGuard: PasswordGuard;
  /** Tells credential caches (API keys) that a user's state changed; called after the change commits. */
  credentialsChanged: (userId: string) => Promise<void>;
  /** Queues `user.access_revoked` in the deletion's transaction. */
  queue: Pick<JobQueue, 'enqueue'>;
}

/** Things a user does to their own account that need proof beyond a bearer token. */
export function createAccount(d: AccountDeps) {
  /** Passwords must be given again; password-less (OAuth) users must have signed in within REAUTH_WINDOW_MS. */
  async function reauthenticate(user: UserRow, caller: Caller, proof: { password?: string }): Promise<'password' | 'recent_session'> {
    if (user.passwordHash) {
      if (!proof.password) throw Forbidden('Confirm with your password', 'reauthentication_required');
      if (!(await d.passwordGuard.verify(user.email, user.passwordHash, proof.password))) {
        throw Forbidden('Password is incorrect', 'invalid_password');
      }
      return 'password';
    }
    const openedAt = caller.sessionCreatedAt?.getTime();
    if (openedAt === undefined || Date.now() - openedAt > REAUTH_WINDOW_MS) {
      throw Forbidden('Sign in again, then retry within 10 minutes', 'reauthentication_required');
    }
    return 'recent_session';
  }

  return {
    reauthenticate,

    /**
     * Deletes the account: signed out everywhere and gone to every reader when this returns, its rows erased by a
     * job after (users/erasure.ts), which announces `user.deleted` at the end. The audit entry remains.
     */
    async delete(caller: Caller, proof: { password?: string }, ctx: AuditContext): Promise<void> {
      const user = await d.users.require(caller.userId);
      const method = await reauthenticate(user, caller, proof);
      await inTransaction(d.db, async (tx) => {
        // The last administrator who can sign in stays (as they cannot demote or disable themselves): someone must be left to run the deployment.
        const admins = await d.users.lockActiveAdmins(tx);
        if (admins.length === 1 && admins[0] === user.id) {
          throw Conflict('You are the only administrator: make someone else an administrator before deleting your account', 'last_admin');
        }
        // Two deletions at once: the second waits on the row, then finds it deleted, as it would a moment later.
        if (!(await d.users.delete(user.id, tx))) throw NotFound('User', 'user_not_found');
        await d.audit.record({ action: 'user.deleted', userId: user.id, ...ctx, metadata: { reauthenticatedWith: method } }, tx);
        // Its open sockets close now, not at their next periodic check (`user.deleted` comes only after the erasure).
        await accessRevoked.announce(d.queue, { userId: user.id }, tx);
        // Its sign-in identities go now, not with the erasure: signing in with one again makes a new account at once.
        await createOAuthRepository(tx).unlinkAll(user.id);
      });
      await Promise.all([d.credentialsChanged(user.id), d.users.forget(user.id)]);
    },
  };
}

export type Account = ReturnType<typeof createAccount>;
