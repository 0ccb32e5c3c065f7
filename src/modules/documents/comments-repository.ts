import { and, asc, count, eq, gt, inArray, isNotNull, isNull, type SQL } from 'drizzle-orm';
import { alias } from 'drizzle-orm/pg-core';
import { withinCap, type Db } from '../../platform/db/database.ts';
import { documentComments, type CommentRow } from './schema.ts';

/** Comment threads: roots quote a passage, replies name their parent. */
export function createCommentsRepository(db: Db) {
  return {
    async get(documentId: string, id: string): Promise<CommentRow | undefined> {
      const [row] = await db.select().from(documentComments).where(and(eq(documentComments.documentId, documentId), eq(documentComments.id, id)));
      return row;
    },

    /**
     * Records the comment unless its document holds `max` comments already (undefined then), replies included.
     * Comments on one document take turns under an advisory lock until the row is recorded, so those side by
     * side each count the others': none passes it.
     */
    async insert(values: typeof documentComments.$inferInsert, max: number): Promise<CommentRow | undefined> {
      return withinCap(
        db,
        `document-comments:${values.documentId}`,
        max,
        async (tx) => Number((await tx.select({ n: count() }).from(documentComments).where(eq(documentComments.documentId, values.documentId)))[0]?.n ?? 0),
        async (tx) => (await tx.insert(documentComments).values(values).returning())[0]!,
      );
    },

    /**
     * Oldest first, so a thread reads in order; `resolved` keeps the comments of
     * resolved (or open) threads, judged by each thread's root.
     */
    list(documentId: string, opts: { limit: number; cursor?: string; resolved?: boolean }): Promise<CommentRow[]> {
      const where: (SQL | undefined)[] = [eq(documentComments.documentId, documentId)];
      if (opts.cursor) where.push(gt(documentComments.id, opts.cursor));
      if (opts.resolved !== undefined) {
        const roots = alias(documentComments, 'root');
        const threads = db
          .select({ id: roots.id })
          .from(roots)
          .where(and(eq(roots.documentId, documentId), isNull(roots.parentId), opts.resolved ? isNotNull(roots.resolvedAt) : isNull(roots.resolvedAt)));
        where.push(inArray(documentComments.threadId, threads));
      }
      return db.select().from(documentComments).where(and(...where)).orderBy(asc(documentComments.id)).limit(opts.limit);
    },

    /** Undefined when the comment is gone: deleted (with its thread) after the caller found it. */
    async update(id: string, values: Partial<Pick<CommentRow, 'body' | 'resolvedAt' | 'resolvedBy'>>): Promise<CommentRow | undefined> {
      const [row] = await db.update(documentComments).set({ ...values, updatedAt: new Date() }).where(eq(documentComments.id, id)).returning();
      return row;
    },

    /** Its replies go with it (foreign key). */
    async delete(id: string): Promise<void> {
      await db.delete(documentComments).where(eq(documentComments.id, id));
    },
  };
}

export type CommentsRepository = ReturnType<typeof createCommentsRepository>;
