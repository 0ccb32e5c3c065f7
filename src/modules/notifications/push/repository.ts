import { and, asc, eq, getTableColumns, gt, inArray, isNull, lt, or, sql } from 'drizzle-orm';
import type { Db } from '../../../platform/db/database.ts';
import { pushSubscriptions, type PushSubscriptionRow } from './schema.ts';

type NewSubscription = Omit<typeof pushSubscriptions.$inferInsert, 'id' | 'createdAt' | 'updatedAt' | 'lastSentAt'>;

export function createPushRepository(db: Db) {
  /** The user's subscriptions that have not expired, counted, and when the first of them expires (built once). */
  const live = db
    .select({ n: sql<number>`count(*)::int`, until: sql<string | null>`min(${pushSubscriptions.expiresAt})` })
    .from(pushSubscriptions)
    .where(and(eq(pushSubscriptions.userId, sql.placeholder('userId')), or(isNull(pushSubscriptions.expiresAt), gt(pushSubscriptions.expiresAt, sql.placeholder('now')))))
    .prepare('push_subscriptions_live');
  return {
    /** Inserts, or takes over the row of the same endpoint (a browser re-subscribing, or now signed in as another user). */
    async upsert(values: NewSubscription): Promise<{ row: PushSubscriptionRow; created: boolean; previousUserId: string | null }> {
      const [result] = await db
        .insert(pushSubscriptions)
        .values(values)
        .onConflictDoUpdate({
          target: pushSubscriptions.endpointHash,
          set: {
            userId: values.userId,
            pushService: values.pushService,
            secretEnc: values.secretEnc,
            // Its owner re-registering without a label keeps the one it had; a browser changing hands keeps nothing of the last user's.
            label: sql`case when ${pushSubscriptions.userId} = excluded.user_id then coalesce(excluded.label, ${pushSubscriptions.label}) else excluded.label end`,
            lastSentAt: sql`case when ${pushSubscriptions.userId} = excluded.user_id then ${pushSubscriptions.lastSentAt} end`,
            expiresAt: values.expiresAt,
            updatedAt: new Date(),
          },
        })
        // xmax is 0 on a row this statement inserted, set on one it updated. The subquery reads the table as it
        // was before the statement: the browser's owner until now.
        .returning({
          ...getTableColumns(pushSubscriptions),
          created: sql<boolean>`xmax = 0`,
          previousUserId: sql<string | null>`(select p.user_id from ${pushSubscriptions} p where p.endpoint_hash = ${values.endpointHash})`,
        });
      const { created, previousUserId, ...row } = result!;
      return { row, created: Boolean(created), previousUserId };
    },
    list(userId: string): Promise<PushSubscriptionRow[]> {
      return db.select().from(pushSubscriptions).where(eq(pushSubscriptions.userId, userId)).orderBy(asc(pushSubscriptions.createdAt), asc(pushSubscriptions.id));
    },
    /** How many of the user's subscriptions have not expired, and when the first of those expires (epoch ms), if one does. */
    async live(userId: string): Promise<{ count: number; until: number | undefined }> {
      const [row] = await live.execute({ userId, now: new Date().toISOString() });
      return { count: Number(row!.n), until: row!.until ? new Date(row!.until).getTime() : undefined };
    },
    async delete(userId: string, id: string): Promise<boolean> {
      const rows = await db.delete(pushSubscriptions).where(and(eq(pushSubscriptions.id, id), eq(pushSubscriptions.userId, userId))).returning({ id: pushSubscriptions.id });
      return rows.length > 0;
    },
    /** Every subscription of the user last registered before `before` (a browser re-registering, or changing hands, counts anew); the ids of those deleted. */
    async deleteAllOf(userId: string, before: Date): Promise<string[]> {
      const rows = await db
        .delete(pushSubscriptions)
        .where(and(eq(pushSubscriptions.userId, userId), lt(pushSubscriptions.updatedAt, before)))
        .returning({ id: pushSubscriptions.id });
      return rows.map((r) => r.id);
    },
    async remove(ids: string[]): Promise<void> {
      if (ids.length) await db.delete(pushSubscriptions).where(inArray(pushSubscriptions.id, ids));
    },
    async sent(ids: string[]): Promise<void> {
      if (ids.length) await db.update(pushSubscriptions).set({ lastSentAt: new Date() }).where(inArray(pushSubscriptions.id, ids));
    },
  };
}

export type PushRepository = ReturnType<typeof createPushRepository>;
