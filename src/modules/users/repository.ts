import { and, desc, eq, ilike, lt, type SQL } from 'drizzle-orm';
import type { Db } from '../../platform/db/database.ts';
import { users, type UserRow } from './schema.ts';

export function createUsersRepository(db: Db) {
  return {
    async byId(id: string, tx: Db = db): Promise<UserRow | undefined> {
      const [row] = await tx.select().from(users).where(eq(users.id, id));
      return row;
    },

    /** The stored preferences document alone (the chat's model choice reads it per turn). */
    async preferencesOf(id: string): Promise<unknown> {
      const [row] = await db.select({ preferences: users.preferences }).from(users).where(eq(users.id, id));
      return row?.preferences;
    },

    /** Reads and row-locks a user until the transaction ends, so read-modify-write updates cannot interleave. */
    async lockById(id: string, tx: Db): Promise<UserRow | undefined> {
      const [row] = await tx.select().from(users).where(eq(users.id, id)).for('update');
      return row;
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
      const [row] = await tx.update(users).set({ ...values, updatedAt: new Date() }).where(eq(users.id, id)).returning();
      return row;
    },

    async delete(id: string, tx: Db = db): Promise<boolean> {
      const rows = await tx.delete(users).where(eq(users.id, id)).returning({ id: users.id });
      return rows.length > 0;
    },

    async list(opts: { limit: number; cursor?: string; email?: string; role?: 'user' | 'admin' }): Promise<UserRow[]> {
      const where: SQL[] = [];
      if (opts.cursor) where.push(lt(users.id, opts.cursor));
      if (opts.email) where.push(ilike(users.email, `%${opts.email.replace(/[\\%_]/g, (c) => `\\${c}`)}%`));
      if (opts.role) where.push(eq(users.role, opts.role));
      return db.select().from(users).where(and(...where)).orderBy(desc(users.id)).limit(opts.limit);
    },
  };
}

export type UsersRepository = ReturnType<typeof createUsersRepository>;
