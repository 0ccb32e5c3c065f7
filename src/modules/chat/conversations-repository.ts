import { and, desc, eq, getTableColumns, isNull, sql, type SQL } from 'drizzle-orm';
import type { Db } from '../../platform/db/database.ts';
import type { ConversationCursor } from './contracts.ts';
import { conversations } from './schema.ts';

export type ConversationRow = Omit<typeof conversations.$inferSelect, 'searchVector'>;
type Updatable = Partial<Omit<typeof conversations.$inferInsert, 'id' | 'userId' | 'createdAt' | 'searchVector'>>;

export interface ConversationFilter {
  limit: number;
  cursor?: ConversationCursor;
  projectId?: string;
  archived: boolean;
  pinned?: boolean;
}

// search_vector is for search only; everything else reads these columns.
const { searchVector: _searchVector, ...columns } = getTableColumns(conversations);

/**
 * updated_at to the microsecond, as ISO text: a page cursor built from a JS Date
 * (milliseconds) would skip rows that differ from it only below the millisecond.
 */
const exactUpdatedAt = sql<string>`to_char(${conversations.updatedAt} at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')`;

export function createConversationsRepository(db: Db) {
  const owned = (userId: string, id: string) => and(eq(conversations.id, id), eq(conversations.userId, userId));

  return {
    /** Sets a generated title unless the conversation has one by now (the user may have named it meanwhile). */
    async setTitleIfUnset(conversationId: string, title: string): Promise<boolean> {
      const rows = await db
        .update(conversations)
        .set({ title })
        .where(and(eq(conversations.id, conversationId), isNull(conversations.title)))
        .returning({ id: conversations.id });
      return rows.length > 0;
    },

    async insert(values: typeof conversations.$inferInsert, tx: Db = db): Promise<ConversationRow> {
      const [row] = await tx.insert(conversations).values(values).returning(columns);
      return row!;
    },

    async get(userId: string, id: string, tx: Db = db): Promise<ConversationRow | undefined> {
      const [row] = await tx.select(columns).from(conversations).where(owned(userId, id));
      return row;
    },

    /** Any user's conversation: for callers that already checked who may see it. */
    async byId(id: string): Promise<ConversationRow | undefined> {
      const [row] = await db.select(columns).from(conversations).where(eq(conversations.id, id));
      return row;
    },

    /** Reads and row-locks the conversation, so changes to its message tree and current leaf take turns. */
    async lock(id: string, tx: Db): Promise<ConversationRow | undefined> {
      const [row] = await tx.select(columns).from(conversations).where(eq(conversations.id, id)).for('update');
      return row;
    },

    /** Pinned first, then most recently updated. Rows carry `cursor`, the exact key of their position. */
    list(userId: string, f: ConversationFilter): Promise<Array<ConversationRow & { cursor: ConversationCursor }>> {
      const where: SQL[] = [eq(conversations.userId, userId), eq(conversations.archived, f.archived)];
      if (f.projectId) where.push(eq(conversations.projectId, f.projectId));
      if (f.pinned !== undefined) where.push(eq(conversations.pinned, f.pinned));
      if (f.cursor) {
        const c = f.cursor;
        where.push(sql`(${conversations.pinned}, ${conversations.updatedAt}, ${conversations.id}) < (${c.pinned}::boolean, ${c.updatedAt}::timestamptz, ${c.id}::uuid)`);
      }
      return db
        .select({ ...columns, exactUpdatedAt })
        .from(conversations)
        .where(and(...where))
        .orderBy(desc(conversations.pinned), desc(conversations.updatedAt), desc(conversations.id))
        .limit(f.limit)
        .then((rows) => rows.map(({ exactUpdatedAt: updatedAt, ...row }) => ({ ...row, cursor: { pinned: row.pinned, updatedAt, id: row.id } })));
    },

    async update(userId: string, id: string, values: Updatable, tx: Db = db): Promise<ConversationRow | undefined> {
      const [row] = await tx
        .update(conversations)
        .set({ ...values, updatedAt: new Date() })
        .where(owned(userId, id))
        .returning(columns);
      return row;
    },

    /** Moves the branch pointer; a new message also counts as activity, so it comes first in the list. */
    async setCurrentLeaf(id: string, leafId: string | null, tx: Db = db, touch = true): Promise<void> {
      await tx
        .update(conversations)
        .set(touch ? { currentLeafId: leafId, updatedAt: new Date() } : { currentLeafId: leafId })
        .where(eq(conversations.id, id));
    },

    async delete(userId: string, id: string): Promise<boolean> {
      const rows = await db.delete(conversations).where(owned(userId, id)).returning({ id: conversations.id });
      return rows.length > 0;
    },
  };
}

export type ConversationsRepository = ReturnType<typeof createConversationsRepository>;
