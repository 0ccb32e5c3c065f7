import { and, desc, eq, getTableName, ilike, isNull, lt, sql, type SQL } from 'drizzle-orm';
import type { AnyPgColumn } from 'drizzle-orm/pg-core';
import type { Db } from '../../platform/db/database.ts';
import { users, type UserRow } from './schema.ts';

/** Not deleted: an account deleted is gone to every read, though its row stays while its erasure runs. */
const present = isNull(users.deletedAt);

/**
 * The owner's role, disabled time and email, and `present` (a condition: not deleted), joined to another
 * module's row in the same query: the hot paths that verify a credential on every request (sessions, API keys) use it
 * instead of a second round trip. Only the users module names its table; the caller adds
 * `.innerJoin(account.table, account.on)`.
 */
export function accountOf(ownerId: AnyPgColumn) {
  return { table: users, on: eq(users.id, ownerId), role: users.role, disabledAt: users.disabledAt, email: users.email, present };
}

/**
 * SQL text, true when the account `idParam` names (a parameter of the caller's statement: `$1`) is disabled: for a
 * statement written as text (a prepared one, see notifications' send) that must know in its own round trip. As
 * with accountOf, only the users module names its table.
 */
export function accountDisabledSql(idParam: string): string {
  return `exists (select 1 from ${getTableName(users)} where ${users.id.name} = ${idParam} and ${users.disabledAt.name} is not null)`;
}

export function createUsersRepository(db: Db) {
  // Built once: the most frequent read of the users table (preferences, notifications, admin checks).
  const byId = db.select().from(users).where(and(eq(users.id, sql.placeholder('id')), present)).prepare('users_by_id');
  return {
    async byId(id: string, tx: Db = db): Promise<UserRow | undefined> {
      const [row] = tx === db ? await byId.execute({ id }) : await tx.select().from(users).where(and(eq(users.id, id), present));
      return row;
    },

    /** Reads and row-locks a user until the transaction ends, so read-modify-write updates cannot interleave. */
    async lockById(id: string, tx: Db): Promise<UserRow | undefined> {
      const [row] = await tx.select().from(users).where(and(eq(users.id, id), present)).for('update');
      return row;
    },

    /** The user's time zone preference, or undefined (no user, or none set). */
    async timezone(id: string): Promise<string | undefined> {
      const [row] = await db.select({ timezone: sql<string | null>`${users.preferences}->>'timezone'` }).from(users).where(and(eq(users.id, id), present));
      return row?.timezone ?? undefined;
    },

    async byEmail(email: string, tx: Db = db): Promise<UserRow | undefined> {
      const [row] = await tx.select().from(users).where(eq(users.email, email.toLowerCase()));
      return row;
    },

    /** Inserts unless the email is taken; returns undefined on conflict. */
    async insert(values: typeof users.$inferInsert, tx: Db = db): Promise<UserRow | undefined> {
      const [row] = await tx.insert(users).values(values).onConflictDoNothing({ target: users.email }).returning();
      return row;
    },

    async update(id: string, values: Partial<typeof users.$inferInsert>, tx: Db = db): Promise<UserRow | undefined> {
      const [row] = await tx.update(users).set({ ...values, updatedAt: new Date() }).where(and(eq(users.id, id), present)).returning();
      return row;
    },

    /**
     * The account gone to every reader from now on: disabled (its sessions and keys refused where they are
     * checked), its address free for a new account (what it holds instead can never be an address: it has no `@`), its
     * password cleared. Its rows are erased after (erasure.ts).
     */
    /** False when the account was deleted already (by a request that committed while this one waited on its row). */
    async markDeleted(id: string, tx: Db): Promise<boolean> {
      const now = new Date();
      const rows = await tx
        .update(users)
        .set({ deletedAt: now, disabledAt: sql`coalesce(${users.disabledAt}, ${now})`, email: `deleted:${id}`, passwordHash: null, updatedAt: now })
        .where(and(eq(users.id, id), present))
        .returning({ id: users.id });
      return rows.length > 0;
    },

    /** Whether the account is live, deleted with its row still there (its erasure under way), or gone. */
    async standing(id: string): Promise<'live' | 'deleted' | 'gone'> {
      const [row] = await db.select({ deletedAt: users.deletedAt }).from(users).where(eq(users.id, id));
      return !row ? 'gone' : row.deletedAt ? 'deleted' : 'live';
    },

    /**
     * The ids of the administrators who can sign in, their rows locked until the transaction ends. Every
     * change that could leave no administrator takes them first, in id order: two such changes then run one
     * after the other (neither sees the other's admin still there), and never lock each other's rows crosswise.
     */
    async lockActiveAdmins(tx: Db): Promise<string[]> {
      const rows = await tx
        .select({ id: users.id })
        .from(users)
        .where(and(eq(users.role, 'admin'), isNull(users.disabledAt)))
        .orderBy(users.id)
        .for('update');
      return rows.map((r) => r.id);
    },

    async delete(id: string, tx: Db = db): Promise<boolean> {
      const rows = await tx.delete(users).where(eq(users.id, id)).returning({ id: users.id });
      return rows.length > 0;
    },

    async list(opts: { limit: number; cursor?: string; email?: string; role?: 'user' | 'admin' }): Promise<UserRow[]> {
      const where: SQL[] = [present];
      if (opts.cursor) where.push(lt(users.id, opts.cursor));
      if (opts.email) where.push(ilike(users.email, `%${opts.email.replace(/[\\%_]/g, (c) => `\\${c}`)}%`));
      if (opts.role) where.push(eq(users.role, opts.role));
      return db.select().from(users).where(and(...where)).orderBy(desc(users.id)).limit(opts.limit);
    },
  };
}

export type UsersRepository = ReturnType<typeof createUsersRepository>;
