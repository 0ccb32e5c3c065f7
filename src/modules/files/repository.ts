import { and, desc, eq, like, lt, sql, type SQL } from 'drizzle-orm';
import { lockWithinTransaction, type Db } from '../../platform/db/database.ts';
import { fileQuotas, files, fileUsage, type FileRow, type ThumbnailState } from './schema.ts';

export interface FileFilter {
  projectId?: string;
  conversationId?: string;
  /** A MIME type, or its family (`image/`). */
  type?: string;
}

export function createFilesRepository(db: Db) {
  const owned = (userId: string, id: string) => and(eq(files.id, id), eq(files.userId, userId));
  return {
    /** Records a file and adds it to the user's usage: inside a transaction, so both or neither. */
    async insert(values: typeof files.$inferInsert): Promise<FileRow> {
      const [row] = await db.insert(files).values(values).returning();
      await db
        .insert(fileUsage)
        .values({ userId: row!.userId, bytes: row!.size, files: 1 })
        .onConflictDoUpdate({ target: fileUsage.userId, set: { bytes: sql`${fileUsage.bytes} + excluded.bytes`, files: sql`${fileUsage.files} + 1` } });
      return row!;
    },
    /**
     * Inside a transaction: the user's uploads take turns from here until it ends (an advisory lock), so
     * the quota read next cannot change before the row is recorded.
     */
    async lockUser(userId: string): Promise<void> {
      await lockWithinTransaction(db, `files:${userId}`);
    },
    async get(userId: string, id: string): Promise<FileRow | undefined> {
      const [row] = await db.select().from(files).where(owned(userId, id));
      return row;
    },
    /** Any user's file: for a caller that checked a signature naming it. */
    async byId(id: string): Promise<FileRow | undefined> {
      const [row] = await db.select().from(files).where(eq(files.id, id));
      return row;
    },
    list(userId: string, opts: FileFilter & { limit: number; cursor?: string }): Promise<FileRow[]> {
      const where: SQL[] = [eq(files.userId, userId)];
      if (opts.cursor) where.push(lt(files.id, opts.cursor));
      if (opts.projectId) where.push(eq(files.projectId, opts.projectId));
      if (opts.conversationId) where.push(eq(files.conversationId, opts.conversationId));
      if (opts.type) where.push(opts.type.endsWith('/') ? like(files.mimeType, `${opts.type}%`) : eq(files.mimeType, opts.type));
      return db.select().from(files).where(and(...where)).orderBy(desc(files.id)).limit(opts.limit);
    },
    async rename(userId: string, id: string, name: string): Promise<FileRow | undefined> {
      const [row] = await db.update(files).set({ name, updatedAt: new Date() }).where(owned(userId, id)).returning();
      return row;
    },
    /** Deletes a file and takes it off the user's usage: inside a transaction, so both or neither. */
    async delete(userId: string, id: string): Promise<FileRow | undefined> {
      const [row] = await db.delete(files).where(owned(userId, id)).returning();
      if (row) await db.update(fileUsage).set({ bytes: sql`${fileUsage.bytes} - ${row.size}`, files: sql`${fileUsage.files} - 1` }).where(eq(fileUsage.userId, userId));
      return row;
    },
    /** Records how the thumbnail went; undefined when the file is gone meanwhile. */
    async setThumbnail(userId: string, id: string, state: ThumbnailState): Promise<FileRow | undefined> {
      const [row] = await db.update(files).set({ thumbnail: state }).where(owned(userId, id)).returning();
      return row;
    },
    /** The quota an admin set for the user, if any. */
    async quotaOf(userId: string): Promise<number | undefined> {
      const [row] = await db.select({ bytes: fileQuotas.bytes }).from(fileQuotas).where(eq(fileQuotas.userId, userId));
      return row?.bytes;
    },
    async setQuota(userId: string, bytes: number | null): Promise<void> {
      if (bytes === null) await db.delete(fileQuotas).where(eq(fileQuotas.userId, userId));
      else await db.insert(fileQuotas).values({ userId, bytes }).onConflictDoUpdate({ target: fileQuotas.userId, set: { bytes, updatedAt: new Date() } });
    },
    /** Bytes the user stores in files: their usage row, kept as files come and go. */
    async used(userId: string): Promise<number> {
      const [row] = await db.select({ bytes: fileUsage.bytes }).from(fileUsage).where(eq(fileUsage.userId, userId));
      return row?.bytes ?? 0;
    },
  };
}
