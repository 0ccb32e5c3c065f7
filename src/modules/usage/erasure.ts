import { eq } from 'drizzle-orm';
import type { Db } from '../../platform/db/database.ts';
import { erasureOf } from '../users/index.ts';
import { budgets } from './schema.ts';

/**
 * A deleted account's budgets and their alerts (no foreign key reaches them from the account). Its usage
 * events and daily totals stay: they are the deployment's accounting (what was spent, on which model),
 * and name the account only by its id, which nothing resolves any more.
 */
export const usageErasure = (db: Db) => erasureOf(db, 'usage', { table: budgets, where: (userId) => eq(budgets.userId, userId) });
