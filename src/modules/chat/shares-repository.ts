import { and, asc, count, eq, gt, isNull, lt, or } from 'drizzle-orm';
import { withinCap, type Db } from '../../platform/db/database.ts';
import { accountOf } from '../users/index.ts';
import { conversationShares, type ConversationShareRow } from './schema.ts';

/** Conversations' share links. */
export function createSharesRepository(db: Db) {
  const owner = accountOf(conversationShares.userId);

  return {
    /**
     * Records the link unless `max` links open its conversation already (undefined then): those revoked or expired
     * no longer count. Creations for one conversation take turns under an advisory lock until the row is recorded,
     * so those side by side each count the others': none passes it.
     */
    insert(values: typeof conversationShares.$inferInsert, max: number): Promise<ConversationShareRow | undefined> {
      const live = and(
        eq(conversationShares.conversationId, values.conversationId),
        isNull(conversationShares.revokedAt),
        or(isNull(conversationShares.expiresAt), gt(conversationShares.expiresAt, new Date())),
      );
      return withinCap(
        db,
        `conversation-shares:${values.conversationId}`,
        max,
        async (tx) => Number((await tx.select({ n: count() }).from(conversationShares).where(live))[0]?.n ?? 0),
        async (tx) => (await tx.insert(conversationShares).values(values).returning())[0]!,
      );
    },

    /** Oldest first (ids are UUIDv7: in order of creation), a page at a time: after the link `after`. */
    list: (conversationId: string, page: { limit: number; after?: string }) =>
      db
        .select()
        .from(conversationShares)
        .where(and(eq(conversationShares.conversationId, conversationId), page.after ? gt(conversationShares.id, page.after) : undefined))
        .orderBy(asc(conversationShares.id))
        .limit(page.limit),

    /** The link of this token's hash, while its owner's account is present (a deleted one's links open nothing). */
    async byHash(tokenHash: string): Promise<ConversationShareRow | undefined> {
      const [row] = await db
        .select({ share: conversationShares })
        .from(conversationShares)
        .innerJoin(owner.table, and(owner.on, owner.present))
        .where(eq(conversationShares.tokenHash, tokenHash));
      return row?.share;
    },

    async revoke(conversationId: string, shareId: string): Promise<ConversationShareRow | undefined> {
      const [row] = await db
        .update(conversationShares)
        .set({ revokedAt: new Date() })
        .where(and(eq(conversationShares.conversationId, conversationId), eq(conversationShares.id, shareId)))
        .returning();
      return row;
    },

    /** Deletes the links revoked or expired before `cutoff`, of every conversation; how many. */
    async purgeEndedBefore(cutoff: Date): Promise<number> {
      const rows = await db
        .delete(conversationShares)
        .where(or(lt(conversationShares.revokedAt, cutoff), lt(conversationShares.expiresAt, cutoff)))
        .returning({ id: conversationShares.id });
      return rows.length;
    },
  };
}
