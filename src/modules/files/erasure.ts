import { eq } from 'drizzle-orm';
import { deleteSome } from '../../platform/db/batches.ts';
import type { Db } from '../../platform/db/database.ts';
import type { ErasureSource } from '../users/index.ts';
import { files } from './schema.ts';

/** A deleted account's files, as rows: their bytes go on `user.deleted`, under the account's prefix at once. */
export const filesErasure = (db: Db): ErasureSource => ({
  name: 'files',
  erase: (userId, limit) => deleteSome(db, files, eq(files.userId, userId), limit),
});
