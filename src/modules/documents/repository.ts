import { and, count, desc, eq, isNotNull, lt, lte, ne, or, sql, type SQL } from 'drizzle-orm';
import { unionAll } from 'drizzle-orm/pg-core';
import { lockWithinTransaction, type Db } from '../../platform/db/database.ts';
import { accountOf } from '../users/index.ts';
import { documentAttachments, documentReaderState, documents, documentShares, documentVersions, type DocumentRow, type ShareRole, type VersionRow } from './schema.ts';

export type Role = 'owner' | ShareRole;

/** A document as one reader sees it: their role, their favorite, when they last opened it. */
export interface ReaderView {
  doc: DocumentRow;
  role: Role;
  favorite: boolean;
  lastViewedAt: Date | null;
}

export interface DocumentFilter {
  tag?: string;
  favorite?: boolean;
  archived?: boolean;
  template?: boolean;
  projectId?: string;
  sharedWithMe?: boolean;
}

const summary = {
  doc: documents,
  shareRole: documentShares.role,
  favorite: documentReaderState.favorite,
  lastViewedAt: documentReaderState.lastViewedAt,
};

type Joined = { doc: DocumentRow; shareRole: ShareRole | null; favorite: boolean | null; lastViewedAt: Date | null };

/** Documents, their versions, each reader's state and attachments: this module's tables only. */
export function createDocumentsRepository(db: Db) {
  const view = (userId: string, r: Joined): ReaderView | undefined => {
    const role: Role | null = r.doc.ownerId === userId ? 'owner' : r.shareRole;
    return role ? { doc: r.doc, role, favorite: r.favorite ?? false, lastViewedAt: r.lastViewedAt } : undefined;
  };
  // Every read names the reader: the joins bring their share and their own state, and nothing of anyone else's.
  // A document whose owner deleted their account is gone at once for everyone, while its rows wait their erasure.
  const owner = accountOf(documents.ownerId);
  const ownerPresent = and(owner.on, owner.present);
  const readable = (userId: string, tx: Db) =>
    tx
      .select(summary)
      .from(documents)
      .innerJoin(owner.table, ownerPresent)
      .leftJoin(documentShares, and(eq(documentShares.documentId, documents.id), eq(documentShares.userId, userId)))
      .leftJoin(documentReaderState, and(eq(documentReaderState.documentId, documents.id), eq(documentReaderState.userId, userId)));
  const canRead = (userId: string) => or(eq(documents.ownerId, userId), isNotNull(documentShares.role));

  return {
    /** The document and the reader's role on it; undefined when they have none (or there is no such document). */
    async read(userId: string, id: string, tx: Db = db): Promise<ReaderView | undefined> {
      const [row] = await readable(userId, tx).where(eq(documents.id, id));
      return row ? view(userId, row) : undefined;
    },

    async byId(id: string, tx: Db = db): Promise<DocumentRow | undefined> {
      const [row] = await tx.select().from(documents).where(eq(documents.id, id));
      return row;
    },

    /** The document, unless its owner deleted their account: what a share link opens. */
    async shown(id: string): Promise<DocumentRow | undefined> {
      const [row] = await db.select({ doc: documents }).from(documents).innerJoin(owner.table, ownerPresent).where(eq(documents.id, id));
      return row?.doc;
    },

    /**
     * A subquery of the ids of every document the user may read (with this tag): their own and those shared
     * with them. A query, not a list: a search over a user's hundred thousand documents reads them where it
     * needs them instead of sending every id back and forth. Both halves are index-only reads (documents by
     * owner, shares by reader); a share's document is joined only to read its tags (without a tag, the
     * foreign key already says it exists: joining every document was most of the cost for a reader of many).
     */
    readableIds(userId: string, tag?: string): SQL {
      const owned = sql`select d.id from ${documents} d where d.owner_id = ${userId}`;
      if (!tag) return sql`${owned} union all select s.document_id from ${documentShares} s where s.user_id = ${userId}`;
      const tagged = sql`d.tags @> array[${tag}]::text[]`;
      return sql`${owned} and ${tagged} union all select s.document_id from ${documentShares} s join ${documents} d on d.id = s.document_id where s.user_id = ${userId} and ${tagged}`;
    },

    /**
     * Newest first: the user's own documents and those shared with them. Each kind is read newest first from
     * its own index (documents by owner, shares by reader) and only as far as the page needs, then the two are
     * merged: a page costs the same for a user with fifty thousand documents as for one with ten. (Collecting
     * every readable id first, to de-duplicate and sort, made each page grow with all of them.)
     */
    async list(userId: string, f: DocumentFilter & { limit: number; cursor?: string }): Promise<ReaderView[]> {
      const filters: (SQL | undefined)[] = [eq(documents.archived, f.archived ?? false)];
      if (f.tag) filters.push(sql`${documents.tags} @> array[${f.tag}]::text[]`);
      if (f.favorite !== undefined) filters.push(f.favorite ? eq(documentReaderState.favorite, true) : sql`coalesce(${documentReaderState.favorite}, false) = false`);
      if (f.template !== undefined) filters.push(eq(documents.isTemplate, f.template));
      if (f.projectId) filters.push(eq(documents.projectId, f.projectId));
      const state = and(eq(documentReaderState.documentId, documents.id), eq(documentReaderState.userId, userId));
      const own = () =>
        db
          .select({ ...summary, shareRole: sql<ShareRole | null>`null::text`.as('share_role') })
          .from(documents)
          .leftJoin(documentReaderState, state)
          .where(and(eq(documents.ownerId, userId), f.cursor ? lt(documents.id, f.cursor) : undefined, ...filters))
          .orderBy(desc(documents.id))
          .limit(f.limit);
      // Shares name their document: read in the reader's order of document ids, each joined to its document.
      const shared = () =>
        db
          .select({ ...summary, shareRole: sql<ShareRole | null>`${documentShares.role}`.as('share_role') })
          .from(documentShares)
          .innerJoin(documents, eq(documents.id, documentShares.documentId))
          .innerJoin(owner.table, ownerPresent)
          .leftJoin(documentReaderState, state)
          .where(and(eq(documentShares.userId, userId), ne(documents.ownerId, userId), f.cursor ? lt(documentShares.documentId, f.cursor) : undefined, ...filters))
          .orderBy(desc(documentShares.documentId))
          .limit(f.limit);
      const rows =
        f.sharedWithMe === true ? await shared() : f.sharedWithMe === false ? await own() : await unionAll(own(), shared()).orderBy(desc(documents.id)).limit(f.limit);
      return rows.map((r) => view(userId, r)!);
    },

    /** What the user opened last, newest first (only what they can still read). */
    async recent(userId: string, limit: number): Promise<ReaderView[]> {
      const rows = await readable(userId, db)
        .where(and(canRead(userId), isNotNull(documentReaderState.lastViewedAt), eq(documents.archived, false)))
        .orderBy(desc(documentReaderState.lastViewedAt))
        .limit(limit);
      return rows.map((r) => view(userId, r)!);
    },

    /**
     * Inside a transaction: the user's creations take turns from here until it ends (an advisory lock), so
     * the count read next cannot change before the new row is recorded.
     */
    async lockOwner(userId: string, tx: Db): Promise<void> {
      await lockWithinTransaction(tx, `documents:${userId}`);
    },

    /** Every document the user owns: archived ones and templates too. Deleting removes the row, so nothing gone is counted. */
    async countOwned(userId: string, tx: Db = db): Promise<number> {
      const [row] = await tx.select({ n: count() }).from(documents).where(eq(documents.ownerId, userId));
      return Number(row?.n ?? 0);
    },

    async insert(values: typeof documents.$inferInsert, authorId: string, tx: Db): Promise<DocumentRow> {
      const [doc] = await tx.insert(documents).values({ ...values, version: 1 }).returning();
      await tx.insert(documentVersions).values({ documentId: doc!.id, number: 1, title: doc!.title, body: doc!.body, authorId });
      return doc!;
    },

    /**
     * Writes version `base + 1` if the document is still at `base`: the conditional update takes the row's
     * lock, so of two saves from one base the second finds the version moved and changes nothing. Only the
     * newest `keep` versions stay: the older ones go in the same transaction.
     */
    async saveVersion(
      id: string,
      base: number,
      content: { title: string; body: string },
      version: { authorId: string; restoredFrom: number | null; keep: number },
      tx: Db,
    ): Promise<DocumentRow | undefined> {
      const number = base + 1;
      const [doc] = await tx
        .update(documents)
        .set({ ...content, version: number, updatedAt: new Date() })
        .where(and(eq(documents.id, id), eq(documents.version, base)))
        .returning();
      if (!doc) return undefined;
      await tx.insert(documentVersions).values({ documentId: id, number, ...content, authorId: version.authorId, restoredFrom: version.restoredFrom });
      // Numbers run without gaps, so the newest `keep` are those above `number - keep`: one range of the primary
      // key, which holds one version at a time once the history is full (more once, after the setting is lowered).
      if (number > version.keep) await tx.delete(documentVersions).where(and(eq(documentVersions.documentId, id), lte(documentVersions.number, number - version.keep)));
      return doc;
    },

    async update(id: string, values: Partial<Pick<DocumentRow, 'tags' | 'archived' | 'isTemplate' | 'projectId'>>): Promise<void> {
      await db.update(documents).set({ ...values, updatedAt: new Date() }).where(eq(documents.id, id));
    },

    async delete(id: string): Promise<void> {
      await db.delete(documents).where(eq(documents.id, id));
    },

    async version(id: string, number: number): Promise<VersionRow | undefined> {
      const [row] = await db.select().from(documentVersions).where(and(eq(documentVersions.documentId, id), eq(documentVersions.number, number)));
      return row;
    },

    /** Newest first, without bodies (their size instead). */
    versions(id: string, opts: { limit: number; before?: number }) {
      const where = [eq(documentVersions.documentId, id)];
      if (opts.before !== undefined) where.push(lt(documentVersions.number, opts.before));
      return db
        .select({
          number: documentVersions.number,
          title: documentVersions.title,
          authorId: documentVersions.authorId,
          restoredFrom: documentVersions.restoredFrom,
          createdAt: documentVersions.createdAt,
          bytes: sql<number>`octet_length(${documentVersions.body})::int`,
        })
        .from(documentVersions)
        .where(and(...where))
        .orderBy(desc(documentVersions.number))
        .limit(opts.limit);
    },

    async setFavorite(id: string, userId: string, favorite: boolean): Promise<void> {
      await db.insert(documentReaderState).values({ documentId: id, userId, favorite }).onConflictDoUpdate({ target: [documentReaderState.documentId, documentReaderState.userId], set: { favorite } });
    },

    async markViewed(id: string, userId: string, at: Date): Promise<void> {
      await db.insert(documentReaderState).values({ documentId: id, userId, lastViewedAt: at }).onConflictDoUpdate({ target: [documentReaderState.documentId, documentReaderState.userId], set: { lastViewedAt: at } });
    },

    attachments: (id: string) => db.select().from(documentAttachments).where(eq(documentAttachments.documentId, id)).orderBy(documentAttachments.id),
    async attachment(id: string, attachmentId: string) {
      const [row] = await db.select().from(documentAttachments).where(and(eq(documentAttachments.documentId, id), eq(documentAttachments.id, attachmentId)));
      return row;
    },

    async attach(values: typeof documentAttachments.$inferInsert) {
      const [row] = await db.insert(documentAttachments).values(values).onConflictDoNothing().returning();
      return row;
    },

    async detach(id: string, attachmentId: string): Promise<boolean> {
      const rows = await db.delete(documentAttachments).where(and(eq(documentAttachments.documentId, id), eq(documentAttachments.id, attachmentId))).returning({ id: documentAttachments.id });
      return rows.length > 0;
    },

    /** A file was deleted: it is no longer attached anywhere. */
    async forgetFile(fileId: string): Promise<void> {
      await db.delete(documentAttachments).where(eq(documentAttachments.fileId, fileId));
    },
  };
}

export type DocumentsRepository = ReturnType<typeof createDocumentsRepository>;
