import { eq } from 'drizzle-orm';
import type { Announce } from '../../platform/bus/bus.ts';
import type { Db } from '../../platform/db/database.ts';
import { erasureOf } from '../users/index.ts';
import { files } from './schema.ts';

/**
 * A deleted account's files, as rows, each announced deleted as it goes (others' documents may attach it, their
 * collections index it: they let go of it as when its owner deletes it); the bytes go on `user.deleted`, under
 * the account's prefix at once.
 */
export const filesErasure = (db: Db, announce: Announce) =>
  erasureOf(db, 'files', {
    table: files,
    where: (userId) => eq(files.userId, userId),
    gone: (ids, userId) => ids.forEach((fileId) => announce('file.deleted', { userId, fileId })),
  });
