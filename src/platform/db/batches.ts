import { inArray, type SQL } from 'drizzle-orm';
import type { PgColumn, PgTable } from 'drizzle-orm/pg-core';
import type { Db } from './database.ts';

/**
 * Deletes up to `limit` of the rows of `table` that `where` picks, in `order` when given (children before
 * their parents: a cascade then never reaches past the batch), and returns the ids of those that went. One statement, so
 * one short transaction however many rows match: what erasing a large account is made of.
 */
export async function deleteSome(db: Db, table: PgTable & { id: PgColumn }, where: SQL, limit: number, order: SQL[] = []): Promise<string[]> {
  const picked = db.select({ id: table.id }).from(table as PgTable).where(where).orderBy(...order).limit(limit);
  const gone = await db.delete(table).where(inArray(table.id, picked)).returning({ id: table.id });
  return gone.map((row) => String(row.id));
}
