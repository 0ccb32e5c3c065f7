import { and, eq, lt } from 'drizzle-orm';
import type { Db } from '../../../platform/db/database.ts';
import { notificationSlackDestinations, type SlackDestinationRow } from '../schema.ts';

/** The Slack channel's table: where each user's Slack notifications go. */
export function createSlackRepository(db: Db) {
  const table = notificationSlackDestinations;
  return {
    async get(userId: string): Promise<SlackDestinationRow | undefined> {
      const [row] = await db.select().from(table).where(eq(table.userId, userId));
      return row;
    },
    async set(userId: string, values: Pick<SlackDestinationRow, 'kind' | 'webhookUrlEnc' | 'webhookHint' | 'channel'>): Promise<SlackDestinationRow> {
      const [row] = await db
        .insert(table)
        .values({ userId, ...values })
        .onConflictDoUpdate({ target: table.userId, set: { ...values, createdAt: new Date(), updatedAt: new Date() } })
        .returning();
      return row!;
    },
    async delete(userId: string): Promise<boolean> {
      const rows = await db.delete(table).where(eq(table.userId, userId)).returning({ userId: table.userId });
      return rows.length > 0;
    },
    /** Removes the user's destination if it was set before `before` (not one set since). */
    async deleteSetBefore(userId: string, before: Date): Promise<boolean> {
      const rows = await db.delete(table).where(and(eq(table.userId, userId), lt(table.updatedAt, before))).returning({ userId: table.userId });
      return rows.length > 0;
    },
    /** Removes this webhook, if it is still the user's (not one set since the delivery began). */
    async deleteWebhook(userId: string, webhookUrlEnc: string): Promise<void> {
      await db.delete(table).where(and(eq(table.userId, userId), eq(table.webhookUrlEnc, webhookUrlEnc)));
    },
  };
}
