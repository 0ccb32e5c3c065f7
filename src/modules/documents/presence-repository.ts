import { and, asc, eq, gt, lte } from 'drizzle-orm';
import type { Db } from '../../platform/db/database.ts';
import { documentPresence, type PresenceRow } from './schema.ts';

/** Who has a document open, until their heartbeat's expiry. In the database, so every instance sees the same. */
export function createPresenceRepository(db: Db) {
  return {
    /**
     * Records a heartbeat; `changed` when the reader was not present (or had expired) or switched state:
     * only then is anyone told, a plain renewal is silent.
     */
    async beat(documentId: string, userId: string, state: PresenceRow['state'], expiresAt: Date, now: Date): Promise<{ row: PresenceRow; changed: boolean }> {
      const [before] = await db.select().from(documentPresence).where(and(eq(documentPresence.documentId, documentId), eq(documentPresence.userId, userId)));
      const fresh = !before || before.expiresAt <= now;
      const [row] = await db
        .insert(documentPresence)
        .values({ documentId, userId, state, since: now, expiresAt })
        .onConflictDoUpdate({
          target: [documentPresence.documentId, documentPresence.userId],
          set: fresh || before!.state !== state ? { state, since: now, expiresAt } : { expiresAt },
        })
        .returning();
      return { row: row!, changed: fresh || before!.state !== state };
    },

    /** Present now: expired rows are as good as gone, purged or not. */
    present: (documentId: string, now: Date) =>
      db.select().from(documentPresence).where(and(eq(documentPresence.documentId, documentId), gt(documentPresence.expiresAt, now))).orderBy(asc(documentPresence.since)),

    /** The reader left; true when they were present. */
    async leave(documentId: string, userId: string, now: Date): Promise<boolean> {
      const rows = await db.delete(documentPresence).where(and(eq(documentPresence.documentId, documentId), eq(documentPresence.userId, userId))).returning();
      return rows.some((r) => r.expiresAt > now);
    },

    /** An `editing` reader (present now) is `viewing`; true when they were editing. */
    async stopEditing(documentId: string, userId: string, now: Date): Promise<boolean> {
      const rows = await db
        .update(documentPresence)
        .set({ state: 'viewing', since: now })
        .where(and(eq(documentPresence.documentId, documentId), eq(documentPresence.userId, userId), eq(documentPresence.state, 'editing'), gt(documentPresence.expiresAt, now)))
        .returning();
      return rows.length > 0;
    },

    /** Removes what expired, returning it (so readers can be told who left). */
    purge: (now: Date) => db.delete(documentPresence).where(lte(documentPresence.expiresAt, now)).returning(),
  };
}

export type PresenceRepository = ReturnType<typeof createPresenceRepository>;
