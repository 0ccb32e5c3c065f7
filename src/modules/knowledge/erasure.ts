import { eq, inArray } from 'drizzle-orm';
import type { Db } from '../../platform/db/database.ts';
import { erasureOf } from '../users/index.ts';
import { knowledgeChunks, knowledgeCollections, knowledgeItems } from './schema.ts';

/** A deleted account's passages (the text of what it added), then its items, then its collections. */
export const knowledgeErasure = (db: Db) =>
  erasureOf(
    db,
    'knowledge',
    // Found through the account's items (an index each), not the search index that also names the user.
    { table: knowledgeChunks, where: (userId, on) => inArray(knowledgeChunks.itemId, on.select({ id: knowledgeItems.id }).from(knowledgeItems).where(eq(knowledgeItems.userId, userId))) },
    { table: knowledgeItems, where: (userId) => eq(knowledgeItems.userId, userId) },
    { table: knowledgeCollections, where: (userId) => eq(knowledgeCollections.userId, userId) },
  );
