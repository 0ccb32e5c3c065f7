import { eq, inArray } from 'drizzle-orm';
import { deleteSome } from '../../platform/db/batches.ts';
import type { Db } from '../../platform/db/database.ts';
import { inOrder, type ErasureSource } from '../users/index.ts';
import { knowledgeChunks, knowledgeCollections, knowledgeItems } from './schema.ts';

/** A deleted account's passages (the text of what it added), then its items, then its collections. */
export const knowledgeErasure = (db: Db): ErasureSource => ({
  name: 'knowledge',
  erase: (userId, limit) =>
    inOrder(
      // Found through the account's items (an index each), not the search index that also names the user.
      (n) => deleteSome(db, knowledgeChunks, inArray(knowledgeChunks.itemId, db.select({ id: knowledgeItems.id }).from(knowledgeItems).where(eq(knowledgeItems.userId, userId))), n),
      (n) => deleteSome(db, knowledgeItems, eq(knowledgeItems.userId, userId), n),
      (n) => deleteSome(db, knowledgeCollections, eq(knowledgeCollections.userId, userId), n),
    )(limit),
});
