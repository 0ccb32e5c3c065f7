import { asc, eq } from 'drizzle-orm';
import type { Db } from '../../platform/db/database.ts';
import type { ExportSource } from '../export/index.ts';
import { knowledgeCollectionItems, knowledgeCollections, knowledgeItems } from './schema.ts';

/** The user's collections and what each holds (the indexed files and documents are in their own folders; passages and vectors are derived and left out). */
export const knowledgeExport = (db: Db): ExportSource => ({
  name: 'knowledge',
  async write(userId, archive) {
    const collections = await db.select().from(knowledgeCollections).where(eq(knowledgeCollections.userId, userId)).orderBy(asc(knowledgeCollections.createdAt));
    const members = collections.length
      ? await db
          .select({ collectionId: knowledgeCollectionItems.collectionId, kind: knowledgeItems.kind, refId: knowledgeItems.refId, title: knowledgeItems.title, status: knowledgeItems.status, addedAt: knowledgeCollectionItems.addedAt })
          .from(knowledgeCollectionItems)
          .innerJoin(knowledgeItems, eq(knowledgeItems.id, knowledgeCollectionItems.itemId))
          .innerJoin(knowledgeCollections, eq(knowledgeCollections.id, knowledgeCollectionItems.collectionId))
          .where(eq(knowledgeCollections.userId, userId))
      : [];
    const membersOf = Map.groupBy(members, (m) => m.collectionId);
    archive.json(
      'collections.json',
      collections.map((c) => ({ ...c, items: (membersOf.get(c.id) ?? []).map(({ collectionId: _c, ...m }) => m) })),
    );
  },
});
