import { eq } from 'drizzle-orm';
import { deleteSome } from '../../platform/db/batches.ts';
import type { Db } from '../../platform/db/database.ts';
import type { ErasureSource } from '../users/index.ts';
import { budgets } from './schema.ts';

/**
 * A deleted account's budgets and their alerts (no foreign key reaches them from the account). Its usage
 * events and daily totals stay: they are the deployment's accounting (what was spent, on which model),
 * and name the account only by its id, which nothing resolves any more.
 */
export const usageErasure = (db: Db): ErasureSource => ({
  name: 'usage',
  erase: (userId, limit) => deleteSome(db, budgets, eq(budgets.userId, userId), limit),
});
