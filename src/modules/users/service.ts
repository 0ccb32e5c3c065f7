import { Conflict, NotFound } from '../../errors.ts';
import { inTransaction, type Db } from '../../platform/db/database.ts';
import { mergePreferences, readPreferences, type Preferences, type PreferencesPatch } from './preferences.ts';
import { createUsersRepository } from './repository.ts';
import type { UserRow } from './schema.ts';
import type { Announce } from '../../platform/bus/bus.ts';

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
export function createUsersService(db: Db, announce: Announce = () => {}) {
  const repo = createUsersRepository(db);

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

    async preferences(id: string): Promise<Preferences> {
      const user = await this.require(id);
      return readPreferences(user.preferences);
    },

    /** The user's `defaultModel` preference, or null: one primary-key read of the preferences column. */
    async defaultModel(id: string): Promise<string | null> {
      return readPreferences(await repo.preferencesOf(id)).defaultModel;
    },

    async updatePreferences(id: string, patch: PreferencesPatch): Promise<Preferences> {
      const next = await inTransaction(db, async (tx) => {
        // Locked, so two concurrent patches both land instead of the later overwriting the earlier.
        const user = await repo.lockById(id, tx);
        if (!user) throw NotFound('User', 'user_not_found');
        const next = mergePreferences(readPreferences(user.preferences), patch);
        await repo.update(id, { preferences: next }, tx);
        return next;
      });
      announce('user.updated', { userId: id, fields: ['preferences'] });
      return next;
    },

    setPassword: (id: string, passwordHash: string, tx?: Db) => repo.update(id, { passwordHash }, tx),
    markEmailVerified: (id: string, tx?: Db) => repo.update(id, { emailVerifiedAt: new Date() }, tx),
    setDisabled: (id: string, disabled: boolean, tx?: Db) => repo.update(id, { disabledAt: disabled ? new Date() : null }, tx),
    setRole: (id: string, role: 'user' | 'admin', tx?: Db) => repo.update(id, { role }, tx),
    delete: (id: string, tx?: Db) => repo.delete(id, tx),
    list: repo.list,
  };
}

export type UsersService = ReturnType<typeof createUsersService>;
