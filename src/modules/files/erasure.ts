import { eq } from 'drizzle-orm';
import type { Db } from '../../platform/db/database.ts';
import { erasureOf } from '../users/index.ts';
import { files } from './schema.ts';

/** A deleted account's files, as rows: their bytes go on `user.deleted`, under the account's prefix at once. */
export const filesErasure = (db: Db) => erasureOf(db, 'files', { table: files, where: (userId) => eq(files.userId, userId) });
