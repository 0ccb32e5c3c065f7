import { and, asc, count, eq, gt, inArray, isNull, lt, or, sql } from 'drizzle-orm';
import { unionAll } from 'drizzle-orm/pg-core';
import { inTransaction, withinCap, type Db } from '../../platform/db/database.ts';
import { accountOf } from '../users/index.ts';
import { documentLinks, documents, documentShares, type LinkRow, type ShareRole, type ShareRow } from './schema.ts';

/** Where a share sits in a document's list of shares: when it was made (microseconds since 1970), then whose it is. */
export interface SharePosition {
  micros: string;
  userId: string;
}

/** Shares with users and share links. */
export function createSharingRepository(db: Db) {
  return {
    /**
     * Oldest first, a page at a time: after `after` (where the previous page ended). Each row's `position`
     * is its place in that order (the share's time in microseconds, then the reader's id), exact to the
     * microsecond so a page never repeats or skips a share made in the same millisecond as another.
     */
    shares(documentId: string, page: { limit: number; after?: SharePosition }): Promise<Array<ShareRow & { email: string; position: SharePosition }>> {
      const micros = sql<string>`(extract(epoch from ${documentShares.createdAt}) * 1000000)::bigint::text`;
      const after = page.after && sql`(${documentShares.createdAt}, ${documentShares.userId}) > (timestamptz 'epoch' + ${page.after.micros}::bigint * interval '1 microsecond', ${page.after.userId}::uuid)`;
      // Each reader's email from their account, in the same query; those deleted (their erasure still under way) are no longer listed.
      const account = accountOf(documentShares.userId);
      return db
        .select({ share: documentShares, email: account.email, micros })
        .from(documentShares)
        .innerJoin(account.table, account.on)
        .where(and(eq(documentShares.documentId, documentId), account.present, after))
        .orderBy(asc(documentShares.createdAt), asc(documentShares.userId))
        .limit(page.limit)
        .then((rows) => rows.map((r) => ({ ...r.share, email: r.email, position: { micros: r.micros, userId: r.share.userId } })));
    },

    /**
     * Adds the share, or changes its role, and says the role it had before (null: the share is new). Two at
     * once for the same reader: one adds it, the other waits and then sees it, so only one is told new.
     * Undefined when the share was removed between the two steps.
     */
    async putShare(documentId: string, userId: string, role: ShareRole): Promise<{ row: ShareRow; before: ShareRole | null } | undefined> {
      return inTransaction(db, async (tx) => {
        const [made] = await tx.insert(documentShares).values({ documentId, userId, role }).onConflictDoNothing().returning();
        if (made) return { row: made, before: null };
        const where = and(eq(documentShares.documentId, documentId), eq(documentShares.userId, userId));
        const [held] = await tx.select({ role: documentShares.role }).from(documentShares).where(where).for('update');
        if (!held) return undefined; // removed in between
        const [row] = await tx.update(documentShares).set({ role, updatedAt: new Date() }).where(where).returning();
        return { row: row!, before: held.role };
      });
    },

    async setRole(documentId: string, userId: string, role: ShareRole): Promise<ShareRow | undefined> {
      const [row] = await db
        .update(documentShares)
        .set({ role, updatedAt: new Date() })
        .where(and(eq(documentShares.documentId, documentId), eq(documentShares.userId, userId)))
        .returning();
      return row;
    },

    async unshare(documentId: string, userId: string, tx: Db = db): Promise<boolean> {
      const rows = await tx.delete(documentShares).where(and(eq(documentShares.documentId, documentId), eq(documentShares.userId, userId))).returning({ userId: documentShares.userId });
      return rows.length > 0;
    },

    /**
     * Those of these users who may read the document: its owner and those it is shared with. One query
     * that reads only their rows, however many people the document is shared with.
     */
    async readersAmong(documentId: string, userIds: readonly string[]): Promise<string[]> {
      if (!userIds.length) return [];
      const ids = [...new Set(userIds)];
      const rows = await unionAll(
        db.select({ userId: documents.ownerId }).from(documents).where(and(eq(documents.id, documentId), inArray(documents.ownerId, ids))),
        db.select({ userId: documentShares.userId }).from(documentShares).where(and(eq(documentShares.documentId, documentId), inArray(documentShares.userId, ids))),
      );
      return rows.map((r) => r.userId);
    },

    /**
     * Records the link unless `max` links open its document already (undefined then): those revoked or expired no
     * longer count. Creations for one document take turns under an advisory lock until the row is recorded, so
     * those side by side each count the others': none passes it.
     */
    async insertLink(values: typeof documentLinks.$inferInsert, max: number): Promise<LinkRow | undefined> {
      const live = and(eq(documentLinks.documentId, values.documentId), isNull(documentLinks.revokedAt), or(isNull(documentLinks.expiresAt), gt(documentLinks.expiresAt, new Date())));
      return withinCap(
        db,
        `document-links:${values.documentId}`,
        max,
        async (tx) => Number((await tx.select({ n: count() }).from(documentLinks).where(live))[0]?.n ?? 0),
        async (tx) => (await tx.insert(documentLinks).values(values).returning())[0]!,
      );
    },

    /** Oldest first (ids are UUIDv7: in order of creation), a page at a time: after the link `after`. */
    links: (documentId: string, page: { limit: number; after?: string }) =>
      db
        .select()
        .from(documentLinks)
        .where(and(eq(documentLinks.documentId, documentId), page.after ? gt(documentLinks.id, page.after) : undefined))
        .orderBy(asc(documentLinks.id))
        .limit(page.limit),

    async linkByHash(tokenHash: string): Promise<LinkRow | undefined> {
      const [row] = await db.select().from(documentLinks).where(eq(documentLinks.tokenHash, tokenHash));
      return row;
    },

    /** The shares of the owner's documents made before `before`: whom each document is shared with. */
    sharesMadeBefore: (ownerId: string, before: Date): Promise<Array<{ documentId: string; userId: string }>> =>
      db
        .select({ documentId: documentShares.documentId, userId: documentShares.userId })
        .from(documentShares)
        .innerJoin(documents, eq(documents.id, documentShares.documentId))
        .where(and(eq(documents.ownerId, ownerId), lt(documentShares.createdAt, before))),

    /** Revokes the links to the owner's documents made before `before` and not revoked yet; how many. */
    async revokeLinksMadeBefore(ownerId: string, before: Date): Promise<number> {
      const rows = await db
        .update(documentLinks)
        .set({ revokedAt: new Date() })
        .where(
          and(
            inArray(documentLinks.documentId, db.select({ id: documents.id }).from(documents).where(eq(documents.ownerId, ownerId))),
            lt(documentLinks.createdAt, before),
            isNull(documentLinks.revokedAt),
          ),
        )
        .returning({ id: documentLinks.id });
      return rows.length;
    },

    /** Deletes the links revoked or expired before `cutoff`, of every document; how many. */
    async purgeLinksEndedBefore(cutoff: Date): Promise<number> {
      const rows = await db
        .delete(documentLinks)
        .where(or(lt(documentLinks.revokedAt, cutoff), lt(documentLinks.expiresAt, cutoff)))
        .returning({ id: documentLinks.id });
      return rows.length;
    },

    async revokeLink(documentId: string, linkId: string): Promise<LinkRow | undefined> {
      const [row] = await db
        .update(documentLinks)
        .set({ revokedAt: new Date() })
        .where(and(eq(documentLinks.documentId, documentId), eq(documentLinks.id, linkId)))
        .returning();
      return row;
    },
  };
}

export type SharingRepository = ReturnType<typeof createSharingRepository>;
