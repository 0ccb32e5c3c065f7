import { and, desc, eq, isNotNull, lt, or, sql, type SQL } from 'drizzle-orm';
import type { Db } from '../../platform/db/database.ts';
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
  const readable = (userId: string, tx: Db) =>
    tx
      .select(summary)
      .from(documents)
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

    /**
     * A subquery of the ids of every document the user may read (with this tag): their own and those shared
     * with them. A query, not a list: a search over a user's hundred thousand documents reads them where it
     * needs them instead of sending every id back and forth.
     */
    readableIds(userId: string, tag?: string): SQL {
      const tagged = tag ? sql` and d.tags @> array[${tag}]::text[]` : sql``;
      return sql`select d.id from ${documents} d where d.owner_id = ${userId}${tagged} union all select s.document_id from ${documentShares} s join ${documents} d on d.id = s.document_id where s.user_id = ${userId}${tagged}`;
    },

    /** Newest first: the user's own documents and those shared with them. */
    async list(userId: string, f: DocumentFilter & { limit: number; cursor?: string }): Promise<ReaderView[]> {
      // The user's own and shared ids first (two index reads): the OR alone made the planner walk every user's documents by id.
      const theirs = sql`${documents.id} in (select d.id from ${documents} d where d.owner_id = ${userId} union all select s.document_id from ${documentShares} s where s.user_id = ${userId})`;
      const where: (SQL | undefined)[] = [theirs, canRead(userId), eq(documents.archived, f.archived ?? false)];
      if (f.cursor) where.push(lt(documents.id, f.cursor));
      if (f.tag) where.push(sql`${documents.tags} @> array[${f.tag}]::text[]`);
      if (f.favorite !== undefined) where.push(f.favorite ? eq(documentReaderState.favorite, true) : sql`coalesce(${documentReaderState.favorite}, false) = false`);
      if (f.template !== undefined) where.push(eq(documents.isTemplate, f.template));
      if (f.projectId) where.push(eq(documents.projectId, f.projectId));
      if (f.sharedWithMe !== undefined) where.push(f.sharedWithMe ? isNotNull(documentShares.role) : eq(documents.ownerId, userId));
      const rows = await readable(userId, db).where(and(...where)).orderBy(desc(documents.id)).limit(f.limit);
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

    async insert(values: typeof documents.$inferInsert, authorId: string, tx: Db): Promise<DocumentRow> {
      const [doc] = await tx.insert(documents).values({ ...values, version: 1 }).returning();
      await tx.insert(documentVersions).values({ documentId: doc!.id, number: 1, title: doc!.title, body: doc!.body, authorId });
      return doc!;
    },

    /**
     * Writes version `base + 1` if the document is still at `base`: the conditional update takes the row's
     * lock, so of two saves from one base the second finds the version moved and changes nothing.
     */
    async saveVersion(id: string, base: number, content: { title: string; body: string }, authorId: string, restoredFrom: number | null, tx: Db): Promise<DocumentRow | undefined> {
      const [doc] = await tx
        .update(documents)
        .set({ ...content, version: base + 1, updatedAt: new Date() })
        .where(and(eq(documents.id, id), eq(documents.version, base)))
        .returning();
      if (!doc) return undefined;
      await tx.insert(documentVersions).values({ documentId: id, number: base + 1, ...content, authorId, restoredFrom });
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
