import { and, arrayOverlaps, count, desc, eq, inArray, isNull, lt, sql } from 'drizzle-orm';
import { lockWithinTransaction, type Db } from '../../platform/db/database.ts';
import { webhookAttempts, webhookEndpoints, webhookMessages, type AttemptRow, type EndpointRow, type MessageRow } from './schema.ts';

/** An attempt's log row, and the status it leaves its message in. */
export interface AttemptOutcome {
  id: string;
  messageId: string;
  attempt: number;
  statusCode: number | null;
  latencyMs: number;
  responseExcerpt: string | null;
  error: string | null;
  status: 'delivered' | 'failed';
}

/** Messages with their endpoints (null once deleted): what an attempt reads. */
const withEndpoints = (db: Db) =>
  db.select({ message: webhookMessages, endpoint: webhookEndpoints }).from(webhookMessages).leftJoin(webhookEndpoints, eq(webhookEndpoints.id, webhookMessages.endpointId));

/** A message and its endpoint by the message's id, as a prepared query. */
const prepareMessageWithEndpoint = (db: Db) => withEndpoints(db).where(eq(webhookMessages.id, sql.placeholder('id'))).prepare('webhooks_message_with_endpoint');

/** Queries of the webhook tables, nothing else. */
export function createWebhooksRepository(db: Db) {
  const own = (userId: string, id: string) => and(eq(webhookEndpoints.id, id), eq(webhookEndpoints.userId, userId));
  let messageWithEndpoint: ReturnType<typeof prepareMessageWithEndpoint> | undefined;
  return {
    async createEndpoint(values: typeof webhookEndpoints.$inferInsert): Promise<EndpointRow> {
      const [row] = await db.insert(webhookEndpoints).values(values).returning();
      return row!;
    },
    /**
     * Inside a transaction: the user's registrations take turns from here until it ends (an advisory lock), so
     * the count read next cannot change before the new row is recorded.
     */
    async lockUser(userId: string): Promise<void> {
      await lockWithinTransaction(db, `webhooks:${userId}`);
    },
    async countEndpoints(userId: string): Promise<number> {
      const [row] = await db.select({ n: count() }).from(webhookEndpoints).where(eq(webhookEndpoints.userId, userId));
      return Number(row?.n ?? 0);
    },
    async endpoint(userId: string, id: string): Promise<EndpointRow | undefined> {
      const [row] = await db.select().from(webhookEndpoints).where(own(userId, id));
      return row;
    },
    endpoints(userId: string, opts: { limit: number; cursor?: string }): Promise<EndpointRow[]> {
      const where = [eq(webhookEndpoints.userId, userId)];
      if (opts.cursor) where.push(lt(webhookEndpoints.id, opts.cursor));
      return db.select().from(webhookEndpoints).where(and(...where)).orderBy(desc(webhookEndpoints.id)).limit(opts.limit);
    },
    /** The enabled endpoints of these users that want any of these types (the caller matches each event's scope). */
    subscribedAny(userIds: string[], eventTypes: string[]): Promise<EndpointRow[]> {
      return db
        .select()
        .from(webhookEndpoints)
        .where(and(inArray(webhookEndpoints.userId, userIds), isNull(webhookEndpoints.disabledAt), arrayOverlaps(webhookEndpoints.events, eventTypes)));
    },
    async updateEndpoint(id: string, patch: Partial<Omit<EndpointRow, 'id' | 'userId' | 'createdAt'>>): Promise<EndpointRow | undefined> {
      const [row] = await db.update(webhookEndpoints).set({ ...patch, updatedAt: new Date() }).where(eq(webhookEndpoints.id, id)).returning();
      return row;
    },
    /**
     * A new secret, the one it replaces put first among the previous ones (each signing until its own `until`), those
     * expired by `now` and those beyond the newest `keep` dropped, in one statement: the list is read from the row as
     * it is written, so rotations at once each keep the ones before.
     */
    async rotateSecret(id: string, secretEnc: string, opts: { until: Date; now: Date; keep: number }): Promise<EndpointRow | undefined> {
      const replaced = sql`jsonb_build_array(jsonb_build_object('secretEnc', ${webhookEndpoints.secretEnc}, 'until', ${opts.until.toISOString()}::text)) || ${webhookEndpoints.previousSecrets}`;
      const kept = sql`(
        select coalesce(jsonb_agg(s.value order by s.n), '[]'::jsonb) from (
          select p.value, p.n from jsonb_array_elements(${replaced}) with ordinality as p(value, n)
          where (p.value->>'until')::timestamptz > ${opts.now.toISOString()}::timestamptz
          order by p.n limit ${opts.keep}::int
        ) s)`;
      const [row] = await db.update(webhookEndpoints).set({ secretEnc, previousSecrets: kept, updatedAt: new Date() }).where(eq(webhookEndpoints.id, id)).returning();
      return row;
    },
    async deleteEndpoint(userId: string, id: string): Promise<boolean> {
      return (await db.delete(webhookEndpoints).where(own(userId, id)).returning({ id: webhookEndpoints.id })).length > 0;
    },
    /** Every endpoint of the user (their projects' included) registered before `before`, with its messages; the ids of those deleted. */
    async deleteEndpointsOf(userId: string, before: Date): Promise<string[]> {
      const rows = await db
        .delete(webhookEndpoints)
        .where(and(eq(webhookEndpoints.userId, userId), lt(webhookEndpoints.createdAt, before)))
        .returning({ id: webhookEndpoints.id });
      return rows.map((r) => r.id);
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
    /** The messages made: one already made from the same event for the same endpoint is skipped. */
    createMessages(values: (typeof webhookMessages.$inferInsert)[]): Promise<MessageRow[]> {
      return db.insert(webhookMessages).values(values).onConflictDoNothing().returning();
    },
    /** A message and its endpoint (null once deleted) in one query: what an attempt reads. */
    async messageWithEndpoint(id: string): Promise<{ message: MessageRow; endpoint: EndpointRow | null } | undefined> {
      // Every attempt runs it: built on first use (this repository is also made per transaction, where it is not).
      messageWithEndpoint ??= prepareMessageWithEndpoint(db);
      const [row] = await messageWithEndpoint.execute({ id });
      return row;
    },
    /** Messages and their endpoints (null once deleted) by id, in one query; ids not found are left out. */
    messagesWithEndpoints(ids: string[]): Promise<Array<{ message: MessageRow; endpoint: EndpointRow | null }>> {
      return withEndpoints(db).where(inArray(webhookMessages.id, ids));
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

    /**
     * Many attempts logged and their messages' status set, in one statement
     * (unnest of one array per column, the same SQL whatever the count).
     */
    async recordAttempts(rows: AttemptOutcome[]): Promise<void> {
      const column = <T>(type: string, value: (r: AttemptOutcome) => T) => sql`${sql.param(rows.map(value))}::${sql.raw(type)}[]`;
      await db.execute(sql`
        with logged as (
          insert into ${webhookAttempts} (id, message_id, attempt, status_code, latency_ms, response_excerpt, error)
          select * from unnest(${column('uuid', (r) => r.id)}, ${column('text', (r) => r.messageId)}, ${column('int', (r) => r.attempt)}, ${column('int', (r) => r.statusCode)},
            ${column('int', (r) => r.latencyMs)}, ${column('text', (r) => r.responseExcerpt)}, ${column('text', (r) => r.error)}) as a(id, message_id, attempt, status_code, latency_ms, response_excerpt, error)
          -- A message deleted meanwhile (with its endpoint) has nothing to log: it must not fail the others' statement.
          where exists (select 1 from ${webhookMessages} where ${webhookMessages.id} = a.message_id)
        )
        update ${webhookMessages} m set status = u.status
        from unnest(${column('text', (r) => r.messageId)}, ${column('text', (r) => r.status)}) as u(id, status)
        where m.id = u.id`);
    },
    attempts(messageId: string): Promise<AttemptRow[]> {
      return db.select().from(webhookAttempts).where(eq(webhookAttempts.messageId, messageId)).orderBy(webhookAttempts.id);
    },
  };
}

export type WebhooksRepository = ReturnType<typeof createWebhooksRepository>;
