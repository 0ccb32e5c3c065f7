import { Conflict, NotFound } from '../../errors.ts';
import { inTransaction, type Db } from '../../platform/db/database.ts';
import { mergePreferences, readPreferences, type Preferences, type PreferencesPatch } from './preferences.ts';
import { createUsersRepository } from './repository.ts';
import type { UserRow } from './schema.ts';
import type { Announce } from '../../platform/bus/bus.ts';
import type { Broadcast } from '../../platform/broadcast/broadcast.ts';
import { createBroadcastCache } from '../../platform/broadcast/cache.ts';
import type { Logger } from '../../platform/observability/logger.ts';
import type { JobQueue } from '../../platform/queue/queue.ts';
import { createAccountErasure, type ErasureSettings, type ErasureSource } from './erasure.ts';

export interface PublicUser {
  id: string;
  email: string;
  emailVerified: boolean;
  name: string | null;
  role: 'user' | 'admin';
  disabled: boolean;
  hasPassword: boolean;
  createdAt: string;
  updatedAt: string;
}

export const toPublicUser = (u: UserRow): PublicUser => ({
  id: u.id,
  email: u.email,
  emailVerified: u.emailVerifiedAt !== null,
  name: u.name,
  role: u.role,
  disabled: u.disabledAt !== null,
  hasPassword: u.passwordHash !== null,
  createdAt: u.createdAt.toISOString(),
  updatedAt: u.updatedAt.toISOString(),
});

export const normalizeEmail = (email: string) => email.trim().toLowerCase();

/**
 * Accounts: creation, profile, preferences, role and status. Knows nothing of HTTP or sessions.
 * Profile and preference changes are announced as `user.updated` (the user's other devices hear of them over /v1/ws).
 */
export function createUsersService(db: Db, deps: { announce: Announce; broadcast: Broadcast; logger: Logger; queue: JobQueue; erasureSources: () => ErasureSource[]; erasure: ErasureSettings }) {
  const repo = createUsersRepository(db);
  const announce = deps.announce;
  const erasure = createAccountErasure({ repo, queue: deps.queue, sources: deps.erasureSources, settings: deps.erasure, announce, logger: deps.logger });
  // Read on every notification sent and every chat turn without a model: kept per user, dropped in every
  // process when they change (or the account goes).
  const preferences = createBroadcastCache<Preferences | undefined>({
    broadcast: deps.broadcast,
    topic: 'users.preferences',
    load: async (id) => {
      const user = await repo.byId(id);
      return user && readPreferences(user.preferences);
    },
    logger: deps.logger,
  });

  return {
    repo,
    byId: (id: string, tx?: Db) => repo.byId(id, tx),
    byEmail: (email: string, tx?: Db) => repo.byEmail(normalizeEmail(email), tx),

    /** The time zone in the user's preferences (budget periods follow it), or undefined. */
    timezone: (id: string) => repo.timezone(id),
    /** Whether the user exists (for other modules' existence checks, without loading the row). */
    exists: async (id: string) => (await repo.byId(id)) !== undefined,

    async require(id: string): Promise<UserRow> {
      const user = await repo.byId(id);
      if (!user) throw NotFound('User', 'user_not_found');
      return user;
    },

    async create(
      input: { email: string; passwordHash: string | null; name?: string | null; role?: 'user' | 'admin'; emailVerified?: boolean },
      tx?: Db,
    ): Promise<UserRow> {
      const user = await repo.insert(
        {
          email: normalizeEmail(input.email),
          passwordHash: input.passwordHash,
          name: input.name ?? null,
          role: input.role ?? 'user',
          emailVerifiedAt: input.emailVerified ? new Date() : null,
        },
        tx,
      );
      if (!user) throw Conflict('An account with this email already exists', 'email_taken');
      return user;
    },

    async updateProfile(id: string, patch: { name?: string | null }): Promise<UserRow> {
      const user = await repo.update(id, patch);
      if (!user) throw NotFound('User', 'user_not_found');
      announce('user.updated', { userId: id, fields: Object.keys(patch) });
      return user;
    },

    /** The user's preferences (kept in process, see above; do not change the object). 404 for no such user. */
    async preferences(id: string): Promise<Preferences> {
      const found = await preferences.get(id);
      if (!found) throw NotFound('User', 'user_not_found');
      return found;
    },

    /** The user's `defaultModel` preference, or null (also for no such user). */
    async defaultModel(id: string): Promise<string | null> {
      return (await preferences.get(id))?.defaultModel ?? null;
    },

    /** Makes every process drop what it kept about this user: call it after deleting the account commits. */
    forget: (id: string) => preferences.forget(id),

    async updatePreferences(id: string, patch: PreferencesPatch): Promise<Preferences> {
      const next = await inTransaction(db, async (tx) => {
        // Locked, so two concurrent patches both land instead of the later overwriting the earlier.
        const user = await repo.lockById(id, tx);
        if (!user) throw NotFound('User', 'user_not_found');
        const next = mergePreferences(readPreferences(user.preferences), patch);
        await repo.update(id, { preferences: next }, tx);
        return next;
      });
      await preferences.forget(id);
      announce('user.updated', { userId: id, fields: ['preferences'] });
      return next;
    },

    setPassword: (id: string, passwordHash: string, tx?: Db) => repo.update(id, { passwordHash }, tx),
    markEmailVerified: (id: string, tx?: Db) => repo.update(id, { emailVerifiedAt: new Date() }, tx),
    setDisabled: (id: string, disabled: boolean, tx?: Db) => repo.update(id, { disabledAt: disabled ? new Date() : null }, tx),
    setRole: (id: string, role: 'user' | 'admin', tx?: Db) => repo.update(id, { role }, tx),
    /** Deletes the account in the caller's transaction: gone to every reader at once, its rows erased by a job after (erasure.ts). */
    delete: (id: string, tx: Db) => erasure.begin(id, tx),
    /** The erasure job's work (ERASE_QUEUE). */
    erase: erasure.run,
    lockActiveAdmins: (tx: Db) => repo.lockActiveAdmins(tx),
    list: repo.list,
  };
}

export type UsersService = ReturnType<typeof createUsersService>;
