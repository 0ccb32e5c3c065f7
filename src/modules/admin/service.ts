import { Conflict, Forbidden, NotFound } from '../../errors.ts';
import { inTransaction, type Db } from '../../platform/db/database.ts';
import type { Outbox } from '../../platform/mail/outbox.ts';
import type { JobQueue } from '../../platform/queue/queue.ts';
import type { Audit, AuditContext } from '../audit/index.ts';
import { accessRevoked, type Sessions } from '../auth/index.ts';
import type { UserRow } from '../users/index.ts';
import type { UsersService } from '../users/index.ts';

export interface AdminDeps {
  db: Db;
  users: UsersService;
  sessions: Sessions;
  audit: Audit;
  outbox: Outbox;
  /** Tells credential caches (API keys) that a user's state changed; called after the change commits. */
  credentialsChanged: (userId: string) => Promise<void>;
  /** Queues `user.access_revoked` in the transaction that disables an account or changes its role. */
  queue: Pick<JobQueue, 'enqueue'>;
}

type Role = 'user' | 'admin';

/** Operator actions on accounts. `actorId` is the admin acting; an admin may never lock themselves out. */
export function createAdmin(d: AdminDeps) {
  /**
   * The account to change, for an actor still an administrator: checked again under the administrators' lock
   * (see lockActiveAdmins), so two administrators demoting or disabling each other at once cannot both
   * succeed and leave none. The actor cannot remove themselves, so one always remains.
   */
  async function lockUser(actorId: string, id: string, tx: Db): Promise<UserRow> {
    if (!(await d.users.repo.lockActiveAdmins(tx)).includes(actorId)) throw Forbidden('You are no longer an administrator', 'admin_required');
    const user = await d.users.repo.lockById(id, tx);
    if (!user) throw NotFound('User', 'user_not_found');
    return user;
  }

  return {
    listUsers: (opts: { limit: number; cursor?: string; email?: string; role?: Role }) => d.users.list(opts),
    getUser: (id: string) => d.users.require(id),
    listAudit: (opts: { limit: number; cursor?: string; userId?: string; action?: string }) => d.audit.list(opts),
    listOutbox: (opts: { limit: number; cursor?: string; to?: string }) => d.outbox.list(opts),

    /**
     * Locks the account out at once: sessions are revoked here, API keys fail because the authenticator checks
     * disabledAt (and every instance's key cache is told), and its open sockets close (`user.access_revoked`).
     */
    async disable(actorId: string, id: string, ctx: AuditContext): Promise<UserRow> {
      if (actorId === id) throw Conflict('You cannot disable your own account', 'cannot_disable_self');
      const disabled = await inTransaction(d.db, async (tx) => {
        let user = await lockUser(actorId, id, tx);
        if (!user.disabledAt) {
          user = (await d.users.setDisabled(id, true, tx))!;
          await d.audit.record({ action: 'user.disabled', userId: id, actorId, ...ctx }, tx);
        }
        const revoked = await d.sessions.revokeAll(id, 'disabled_by_admin', undefined, tx);
        if (revoked) await d.audit.record({ action: 'session.revoked', userId: id, actorId, ...ctx, metadata: { all: true, count: revoked } }, tx);
        await accessRevoked.announce(d.queue, { userId: id }, tx);
        return user;
      });
      await d.credentialsChanged(id);
      return disabled;
    },

    async enable(actorId: string, id: string, ctx: AuditContext): Promise<UserRow> {
      const enabled = await inTransaction(d.db, async (tx) => {
        const user = await lockUser(actorId, id, tx);
        if (!user.disabledAt) return user;
        const row = (await d.users.setDisabled(id, false, tx))!;
        await d.audit.record({ action: 'user.enabled', userId: id, actorId, ...ctx }, tx);
        return row;
      });
      await d.credentialsChanged(id);
      return enabled;
    },

    async setRole(actorId: string, id: string, role: Role, ctx: AuditContext): Promise<UserRow> {
      if (actorId === id && role !== 'admin') throw Conflict('You cannot remove your own admin role', 'cannot_demote_self');
      const updated = await inTransaction(d.db, async (tx) => {
        const user = await lockUser(actorId, id, tx);
        if (user.role === role) return user;
        const row = (await d.users.setRole(id, role, tx))!;
        await d.audit.record({ action: 'user.role_changed', userId: id, actorId, ...ctx, metadata: { from: user.role, to: role } }, tx);
        // Their open sockets are checked again as a new one would be: a former admin's from a banned address closes.
        await accessRevoked.announce(d.queue, { userId: id }, tx);
        return row;
      });
      await d.credentialsChanged(id);
      return updated;
    },
  };
}

export type Admin = ReturnType<typeof createAdmin>;
