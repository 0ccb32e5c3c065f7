import { and, eq, gt, lt } from 'drizzle-orm';
import type { Db } from '../../platform/db/database.ts';
import { aiResponses } from './schema.ts';

/** How long a stored response can be retrieved or continued, as OpenAI keeps them. */
export const RESPONSE_RETENTION_MS = 30 * 24 * 3600 * 1000;

export type StoredResponse = typeof aiResponses.$inferSelect;
export type NewStoredResponse = typeof aiResponses.$inferInsert;

/** Stored Responses API responses, each visible to its owner only. */
export function createResponseStore(db: Db) {
  const live = () => gt(aiResponses.createdAt, new Date(Date.now() - RESPONSE_RETENTION_MS));
  return {
    async save(row: NewStoredResponse): Promise<void> {
      await db.insert(aiResponses).values(row);
    },

    /** The owner's response; undefined for another user's, a deleted or an expired one alike. */
    async find(id: string, userId: string): Promise<StoredResponse | undefined> {
      const [row] = await db.select().from(aiResponses).where(and(eq(aiResponses.id, id), eq(aiResponses.userId, userId), live()));
      return row;
    },

    async remove(id: string, userId: string): Promise<boolean> {
      // One past retention is gone to its owner already (find), awaiting only the purge.
      const gone = await db.delete(aiResponses).where(and(eq(aiResponses.id, id), eq(aiResponses.userId, userId), live())).returning({ id: aiResponses.id });
      return gone.length > 0;
    },

    /** Deletes those past retention; the scheduled purge. */
    async purge(now = new Date()): Promise<number> {
      const gone = await db.delete(aiResponses).where(lt(aiResponses.createdAt, new Date(now.getTime() - RESPONSE_RETENTION_MS))).returning({ id: aiResponses.id });
      return gone.length;
    },
  };
}

export type ResponseStore = ReturnType<typeof createResponseStore>;
