import { and, asc, count, desc, eq, getTableColumns, inArray, lt, notInArray, or, sql, type SQL } from 'drizzle-orm';
import { inTransaction, withinCap, type Db } from '../../platform/db/database.ts';
import { knowledgeChunks, knowledgeCollectionItems, knowledgeCollections, knowledgeConversationCollections, knowledgeItems, type ChunkRow, type CollectionRow, type ItemRow } from './schema.ts';

export type NewChunk = Omit<typeof knowledgeChunks.$inferInsert, 'id' | 'itemId' | 'userId'>;

/**
 * Holds an item's row for the rest of the transaction: an add that links it (which holds it too, see addItem)
 * waits for this one's decision, and this one, once it holds the row, sees the add's link.
 */
async function lockItem(tx: Db, itemId: string): Promise<boolean> {
  return (await tx.select({ id: knowledgeItems.id }).from(knowledgeItems).where(eq(knowledgeItems.id, itemId)).for('update')).length > 0;
}

/** With the item held (lockItem): deleted, with its passages, when no collection holds it. */
async function deleteIfOrphan(tx: Db, itemId: string): Promise<boolean> {
  const rows = await tx.delete(knowledgeItems).where(and(eq(knowledgeItems.id, itemId), sql`not exists (select 1 from ${knowledgeCollectionItems} ci where ci.item_id = ${itemId})`)).returning({ id: knowledgeItems.id });
  return rows.length > 0;
}

/**
 * A document item's document is among `readable` (the documents module's subquery of what a user may read): asked of
 * one row at a time, each a lookup by the document's id, so a listing's page costs the same for a reader of a
 * hundred thousand documents as for one of ten.
 */
const readableRef = (readable: SQL, refId: SQL) => sql`exists (select 1 from (${readable}) r where r.id = ${refId})`;

/** Queries of the knowledge tables, nothing else. */
export function createKnowledgeRepository(db: Db) {
  const ownCollection = (userId: string, id: string) => and(eq(knowledgeCollections.id, id), eq(knowledgeCollections.userId, userId));
  return {
    /**
     * Records the collection unless its user holds `max` already (undefined then). The user's creations take turns
     * under an advisory lock until the row is recorded, so those side by side each count the others': none passes it.
     */
    async createCollection(values: typeof knowledgeCollections.$inferInsert, max: number): Promise<CollectionRow | undefined> {
      return withinCap(
        db,
        `knowledge-collections:${values.userId}`,
        max,
        async (tx) => Number((await tx.select({ n: count() }).from(knowledgeCollections).where(eq(knowledgeCollections.userId, values.userId)))[0]?.n ?? 0),
        async (tx) => (await tx.insert(knowledgeCollections).values(values).returning())[0]!,
      );
    },
    async collection(userId: string, id: string): Promise<CollectionRow | undefined> {
      const [row] = await db.select().from(knowledgeCollections).where(ownCollection(userId, id));
      return row;
    },
    collections(userId: string, opts: { limit: number; cursor?: string; projectId?: string }): Promise<CollectionRow[]> {
      const where = [eq(knowledgeCollections.userId, userId)];
      if (opts.cursor) where.push(lt(knowledgeCollections.id, opts.cursor));
      if (opts.projectId) where.push(eq(knowledgeCollections.projectId, opts.projectId));
      return db.select().from(knowledgeCollections).where(and(...where)).orderBy(desc(knowledgeCollections.id)).limit(opts.limit);
    },
    async updateCollection(userId: string, id: string, patch: Partial<Pick<CollectionRow, 'name' | 'description' | 'projectId'>>): Promise<CollectionRow | undefined> {
      const [row] = await db.update(knowledgeCollections).set({ ...patch, updatedAt: new Date() }).where(ownCollection(userId, id)).returning();
      return row;
    },
    async deleteCollection(userId: string, id: string): Promise<boolean> {
      return (await db.delete(knowledgeCollections).where(ownCollection(userId, id)).returning({ id: knowledgeCollections.id })).length > 0;
    },

    /**
     * The item for a file or document, made on first use, and put in the collection: in one transaction
     * that holds the item's row, so a removal elsewhere cannot find it orphaned and delete it in between.
     */
    async addItem(collectionId: string, values: { userId: string; kind: ItemRow['kind']; refId: string; title: string }): Promise<{ item: ItemRow; created: boolean }> {
      return inTransaction(db, async (tx) => {
        // DO UPDATE (of nothing) rather than DO NOTHING: it locks and returns the row that is there.
        const [row] = await tx
          .insert(knowledgeItems)
          .values(values)
          .onConflictDoUpdate({ target: [knowledgeItems.kind, knowledgeItems.refId], set: { kind: sql`excluded.kind` } })
          .returning({ ...getTableColumns(knowledgeItems), created: sql<boolean>`xmax = 0` });
        const { created, ...item } = row!;
        await tx.insert(knowledgeCollectionItems).values({ collectionId, itemId: item.id }).onConflictDoNothing();
        return { item, created };
      });
    },
    async item(id: string): Promise<ItemRow | undefined> {
      const [row] = await db.select().from(knowledgeItems).where(eq(knowledgeItems.id, id));
      return row;
    },
    async itemByRef(kind: ItemRow['kind'], refId: string): Promise<ItemRow | undefined> {
      const [row] = await db.select().from(knowledgeItems).where(and(eq(knowledgeItems.kind, kind), eq(knowledgeItems.refId, refId)));
      return row;
    },
    /** Queues the item for indexing unless it is queued or being indexed already (false then): of two re-indexes at once, one goes ahead. */
    async requeue(id: string): Promise<boolean> {
      const rows = await db
        .update(knowledgeItems)
        .set({ status: 'queued', error: null, updatedAt: new Date() })
        .where(and(eq(knowledgeItems.id, id), notInArray(knowledgeItems.status, ['queued', 'indexing'])))
        .returning({ id: knowledgeItems.id });
      return rows.length > 0;
    },
    async setItem(id: string, patch: Partial<Pick<ItemRow, 'status' | 'error' | 'title'>>): Promise<void> {
      await db.update(knowledgeItems).set({ ...patch, updatedAt: new Date() }).where(eq(knowledgeItems.id, id));
    },
    /** Gives the item, and its passages (which carry their owner for search), to another user, in one transaction. */
    async handOver(itemId: string, userId: string): Promise<void> {
      await inTransaction(db, async (tx) => {
        await tx.update(knowledgeItems).set({ userId, updatedAt: new Date() }).where(eq(knowledgeItems.id, itemId));
        await tx.update(knowledgeChunks).set({ userId }).where(eq(knowledgeChunks.itemId, itemId));
      });
    },
    async deleteItemByRef(kind: ItemRow['kind'], refId: string): Promise<ItemRow | undefined> {
      const [row] = await db.delete(knowledgeItems).where(and(eq(knowledgeItems.kind, kind), eq(knowledgeItems.refId, refId))).returning();
      return row;
    },

    /** Takes the item out of the collection, and deletes it when no collection holds it any more; false when the collection did not hold it. */
    async removeItem(collectionId: string, itemId: string): Promise<boolean> {
      return inTransaction(db, async (tx) => {
        if (!(await lockItem(tx, itemId))) return false;
        const removed = await tx.delete(knowledgeCollectionItems).where(and(eq(knowledgeCollectionItems.collectionId, collectionId), eq(knowledgeCollectionItems.itemId, itemId))).returning();
        if (removed.length) await deleteIfOrphan(tx, itemId);
        return removed.length > 0;
      });
    },
    /**
     * `userId` no longer reads the item's document (`readable`: what they may read now): in one transaction that
     * holds the item, their collections let go of it, it is deleted when no collection holds it any more, and, if
     * it was theirs, it passes to `heir` (the document's owner) with its passages. An add that links it meanwhile
     * waits for the hold and re-checks after (see Knowledge.add); one made after the share was given again is
     * kept, as the reader may read the document again by then. `readable`: whether they may (then nothing goes).
     */
    async release(itemId: string, userId: string, readable: SQL, heir: string | undefined): Promise<{ readable: boolean; unlinked: number; deleted: boolean; handedOver: boolean }> {
      return inTransaction(db, async (tx) => {
        const [item] = await tx.select({ refId: knowledgeItems.refId, userId: knowledgeItems.userId }).from(knowledgeItems).where(eq(knowledgeItems.id, itemId)).for('update');
        if (!item) return { readable: false, unlinked: 0, deleted: false, handedOver: false };
        const still = (await tx.execute(sql`select ${readableRef(readable, sql`${item.refId}::uuid`)} as reads`)) as unknown as { rows: Array<{ reads: boolean }> };
        if (still.rows[0]?.reads) return { readable: true, unlinked: 0, deleted: false, handedOver: false };
        const theirs = tx.select({ id: knowledgeCollections.id }).from(knowledgeCollections).where(eq(knowledgeCollections.userId, userId));
        const unlinked = await tx
          .delete(knowledgeCollectionItems)
          .where(and(eq(knowledgeCollectionItems.itemId, itemId), inArray(knowledgeCollectionItems.collectionId, theirs)))
          .returning({ collectionId: knowledgeCollectionItems.collectionId });
        const deleted = await deleteIfOrphan(tx, itemId);
        const handedOver = !deleted && item.userId === userId && !!heir && heir !== userId;
        if (handedOver) {
          await tx.update(knowledgeItems).set({ userId: heir, updatedAt: new Date() }).where(eq(knowledgeItems.id, itemId));
          await tx.update(knowledgeChunks).set({ userId: heir }).where(eq(knowledgeChunks.itemId, itemId));
        }
        return { readable: false, unlinked: unlinked.length, deleted, handedOver };
      });
    },
    /** Deletes each of these items that no collection holds (what a collection's deletion left). */
    async deleteOrphans(itemIds: string[]): Promise<void> {
      for (const itemId of itemIds) await inTransaction(db, async (tx) => (await lockItem(tx, itemId)) && deleteIfOrphan(tx, itemId));
    },
    /**
     * A page of the collection's items. A document's only while `readable` (what the collection's owner may read)
     * holds it: a share removed, its item is left out at once, before `document.unshared` takes the link away.
     */
    itemsOf(collectionId: string, readable: SQL, opts: { limit: number; cursor?: string }): Promise<ItemRow[]> {
      const where = [eq(knowledgeCollectionItems.collectionId, collectionId), sql`(${knowledgeItems.kind} = 'file' or ${readableRef(readable, sql`${knowledgeItems.refId}`)})`];
      if (opts.cursor) where.push(lt(knowledgeItems.id, opts.cursor));
      return db
        .select({ item: knowledgeItems })
        .from(knowledgeCollectionItems)
        .innerJoin(knowledgeItems, eq(knowledgeItems.id, knowledgeCollectionItems.itemId))
        .where(and(...where))
        .orderBy(desc(knowledgeItems.id))
        .limit(opts.limit)
        .then((rows) => rows.map((r) => r.item));
    },
    /** Items no collection holds (left by a collection's deletion). */
    async orphans(userId: string): Promise<string[]> {
      const rows = await db
        .select({ id: knowledgeItems.id })
        .from(knowledgeItems)
        .where(and(eq(knowledgeItems.userId, userId), sql`not exists (select 1 from ${knowledgeCollectionItems} ci where ci.item_id = ${knowledgeItems.id})`));
      return rows.map((r) => r.id);
    },

    /** The passages an item has now: what a re-index can keep (by hash) instead of embedding again. */
    chunksOf(itemId: string): Promise<Array<Pick<ChunkRow, 'hash' | 'embedding' | 'dims'>>> {
      return db.select({ hash: knowledgeChunks.hash, embedding: knowledgeChunks.embedding, dims: knowledgeChunks.dims }).from(knowledgeChunks).where(eq(knowledgeChunks.itemId, itemId)).orderBy(asc(knowledgeChunks.index));
    },

    /** Swaps an item's passages for a new set in one transaction: search sees the old set or the new, never half of one. */
    async replaceChunks(item: ItemRow, chunks: NewChunk[], done: { embeddingModel: string | null; sourceVersion: number | null; tokens: number; truncated: boolean }): Promise<void> {
      await inTransaction(db, async (tx) => {
        await tx.delete(knowledgeChunks).where(eq(knowledgeChunks.itemId, item.id));
        for (let i = 0; i < chunks.length; i += 500) {
          await tx.insert(knowledgeChunks).values(chunks.slice(i, i + 500).map((c) => ({ ...c, itemId: item.id, userId: item.userId })));
        }
        await tx
          .update(knowledgeItems)
          .set({ status: 'ready', error: null, chunks: chunks.length, tokens: done.tokens, embeddingModel: done.embeddingModel, sourceVersion: done.sourceVersion, truncated: done.truncated, indexedAt: new Date(), updatedAt: new Date() })
          .where(eq(knowledgeItems.id, item.id));
      });
    },

    /** Replaces the collections a conversation draws on (beside its project's). */
    async setConversationCollections(userId: string, conversationId: string, collectionIds: string[]): Promise<void> {
      await inTransaction(db, async (tx) => {
        await tx.delete(knowledgeConversationCollections).where(and(eq(knowledgeConversationCollections.conversationId, conversationId), eq(knowledgeConversationCollections.userId, userId)));
        if (collectionIds.length) await tx.insert(knowledgeConversationCollections).values(collectionIds.map((collectionId) => ({ conversationId, collectionId, userId })));
      });
    },
    async conversationCollections(userId: string, conversationId: string): Promise<string[]> {
      const rows = await db
        .select({ id: knowledgeConversationCollections.collectionId })
        .from(knowledgeConversationCollections)
        .where(and(eq(knowledgeConversationCollections.conversationId, conversationId), eq(knowledgeConversationCollections.userId, userId)));
      return rows.map((r) => r.id);
    },
    /** The user's collections an answer draws on: the project's and the conversation's. */
    async groundingCollections(userId: string, projectId: string | null, conversationId: string | null): Promise<string[]> {
      const rows = await db
        .select({ id: knowledgeCollections.id })
        .from(knowledgeCollections)
        .where(
          and(
            eq(knowledgeCollections.userId, userId),
            or(
              projectId ? eq(knowledgeCollections.projectId, projectId) : sql`false`,
              conversationId ? sql`${knowledgeCollections.id} in (select collection_id from ${knowledgeConversationCollections} where conversation_id = ${conversationId} and user_id = ${userId})` : sql`false`,
            ),
          ),
        );
      return rows.map((r) => r.id);
    },
    /** Passages by id, with their item, in the order asked. */
    async passages(ids: string[]): Promise<Array<ChunkRow & { item: ItemRow }>> {
      if (!ids.length) return [];
      const rows = await db.select({ chunk: knowledgeChunks, item: knowledgeItems }).from(knowledgeChunks).innerJoin(knowledgeItems, eq(knowledgeItems.id, knowledgeChunks.itemId)).where(inArray(knowledgeChunks.id, ids));
      const byId = new Map(rows.map((r) => [r.chunk.id, { ...r.chunk, item: r.item }]));
      return ids.flatMap((id) => (byId.has(id) ? [byId.get(id)!] : []));
    },
    /** Every passage of an item, in order (its whole text, for whole-document answers). */
    allPassages(itemId: string): Promise<ChunkRow[]> {
      return db.select().from(knowledgeChunks).where(eq(knowledgeChunks.itemId, itemId)).orderBy(asc(knowledgeChunks.index));
    },

    /** The names of the user's collections that hold each item (another user's collections stay unnamed). */
    async collectionNames(userId: string, itemIds: string[]): Promise<Map<string, string[]>> {
      const names = new Map<string, string[]>();
      if (!itemIds.length) return names;
      const rows = await db
        .select({ itemId: knowledgeCollectionItems.itemId, name: knowledgeCollections.name })
        .from(knowledgeCollectionItems)
        .innerJoin(knowledgeCollections, eq(knowledgeCollections.id, knowledgeCollectionItems.collectionId))
        .where(and(eq(knowledgeCollections.userId, userId), inArray(knowledgeCollectionItems.itemId, itemIds)))
        .orderBy(asc(knowledgeCollections.name));
      for (const r of rows) names.set(r.itemId, [...(names.get(r.itemId) ?? []), r.name]);
      return names;
    },

    /** Ids of the user's collections among `ids` (others' are dropped). */
    async ownCollections(userId: string, ids: string[]): Promise<string[]> {
      if (!ids.length) return [];
      const rows = await db.select({ id: knowledgeCollections.id }).from(knowledgeCollections).where(and(eq(knowledgeCollections.userId, userId), inArray(knowledgeCollections.id, ids)));
      return rows.map((r) => r.id);
    },
  };
}

export type KnowledgeRepository = ReturnType<typeof createKnowledgeRepository>;
