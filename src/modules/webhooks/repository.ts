import { and, arrayContains, desc, eq, isNull, lt, or, sql } from 'drizzle-orm';
import type { Db } from '../../platform/db/database.ts';
import { webhookAttempts, webhookEndpoints, webhookMessages, type AttemptRow, type EndpointRow, type MessageRow } from './schema.ts';

/** Queries of the webhook tables, nothing else. */
export function createWebhooksRepository(db: Db) {
  const own = (userId: string, id: string) => and(eq(webhookEndpoints.id, id), eq(webhookEndpoints.userId, userId));
  return {
    async createEndpoint(values: typeof webhookEndpoints.$inferInsert): Promise<EndpointRow> {
      const [row] = await db.insert(webhookEndpoints).values(values).returning();
      return row!;
    },
    async endpoint(userId: string, id: string): Promise<EndpointRow | undefined> {
      const [row] = await db.select().from(webhookEndpoints).where(own(userId, id));
      return row;
    },
    async endpointById(id: string): Promise<EndpointRow | undefined> {
      const [row] = await db.select().from(webhookEndpoints).where(eq(webhookEndpoints.id, id));
      return row;
    },
    endpoints(userId: string, opts: { limit: number; cursor?: string }): Promise<EndpointRow[]> {
      const where = [eq(webhookEndpoints.userId, userId)];
      if (opts.cursor) where.push(lt(webhookEndpoints.id, opts.cursor));
      return db.select().from(webhookEndpoints).where(and(...where)).orderBy(desc(webhookEndpoints.id)).limit(opts.limit);
    },
    /** The user's enabled endpoints that want this event type: their own ones, and that project's when the event is about one. */
    subscribed(userId: string, eventType: string, projectId: string | null): Promise<EndpointRow[]> {
      const scope = projectId ? or(isNull(webhookEndpoints.projectId), eq(webhookEndpoints.projectId, projectId)) : isNull(webhookEndpoints.projectId);
      return db
        .select()
        .from(webhookEndpoints)
        .where(and(eq(webhookEndpoints.userId, userId), isNull(webhookEndpoints.disabledAt), arrayContains(webhookEndpoints.events, [eventType]), scope));
    },
    async updateEndpoint(id: string, patch: Partial<Omit<EndpointRow, 'id' | 'userId' | 'createdAt'>>): Promise<EndpointRow | undefined> {
      const [row] = await db.update(webhookEndpoints).set({ ...patch, updatedAt: new Date() }).where(eq(webhookEndpoints.id, id)).returning();
      return row;
    },
    async deleteEndpoint(userId: string, id: string): Promise<boolean> {
      return (await db.delete(webhookEndpoints).where(own(userId, id)).returning({ id: webhookEndpoints.id })).length > 0;
    },
    /** Marks a failure: the first one since a success starts the failing window. Returns the window's start. */
    async markFailing(id: string, at: Date): Promise<Date> {
      const [row] = await db
        .update(webhookEndpoints)
        .set({ failingSince: sql`coalesce(${webhookEndpoints.failingSince}, ${at.toISOString()}::timestamptz)` })
        .where(eq(webhookEndpoints.id, id))
        .returning({ failingSince: webhookEndpoints.failingSince });
      return row?.failingSince ?? at;
    },
    async markHealthy(id: string): Promise<void> {
      await db.update(webhookEndpoints).set({ failingSince: null }).where(eq(webhookEndpoints.id, id));
    },

    /** A new message, or nothing when this endpoint already has one for that bus event. */
    async createMessage(values: typeof webhookMessages.$inferInsert): Promise<MessageRow | undefined> {
      const [row] = await db.insert(webhookMessages).values(values).onConflictDoNothing().returning();
      return row;
    },
    async message(id: string): Promise<MessageRow | undefined> {
      const [row] = await db.select().from(webhookMessages).where(eq(webhookMessages.id, id));
      return row;
    },
    async ownMessage(userId: string, id: string): Promise<MessageRow | undefined> {
      const [row] = await db.select().from(webhookMessages).where(and(eq(webhookMessages.id, id), eq(webhookMessages.userId, userId)));
      return row;
    },
    messages(endpointId: string, opts: { limit: number; cursor?: string }): Promise<MessageRow[]> {
      const where = [eq(webhookMessages.endpointId, endpointId)];
      if (opts.cursor) where.push(lt(webhookMessages.id, opts.cursor));
      return db.select().from(webhookMessages).where(and(...where)).orderBy(desc(webhookMessages.id)).limit(opts.limit);
    },
    async setMessageStatus(id: string, status: MessageRow['status']): Promise<void> {
      await db.update(webhookMessages).set({ status }).where(eq(webhookMessages.id, id));
    },

    async recordAttempt(values: typeof webhookAttempts.$inferInsert): Promise<AttemptRow> {
      const [row] = await db.insert(webhookAttempts).values(values).returning();
      return row!;
    },
    attempts(messageId: string): Promise<AttemptRow[]> {
      return db.select().from(webhookAttempts).where(eq(webhookAttempts.messageId, messageId)).orderBy(webhookAttempts.id);
    },
  };
}

export type WebhooksRepository = ReturnType<typeof createWebhooksRepository>;
