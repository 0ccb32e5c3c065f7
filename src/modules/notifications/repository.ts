import { and, asc, count, desc, eq, inArray, isNull, lt, min, sql, type SQL } from 'drizzle-orm';
import { uuidv7 } from 'uuidv7';
import { preparedStatement, type Db } from '../../platform/db/database.ts';
import { accountDisabledSql } from '../users/index.ts';
import { notificationDeliveries, notificationPreferences, notifications, type Channel, type DeliveryRow, type DeliveryStatus, type NotificationRow } from './schema.ts';

/** Why every delivery of a notification to an account an administrator disabled (or deleted) is suppressed. */
export const ACCOUNT_DISABLED = 'account_disabled';

/**
 * A send's statement (see `insert`), written as SQL: the deliveries go as one array per column (unnest), and the
 * statement is prepared, since building it with Drizzle cost more CPU than the database spent running it. It reads
 * whether the recipient's account is disabled (the users module's row, by its primary key) in the same statement,
 * so a send costs no extra round trip for it.
 */
const insertSend = preparedStatement<{ over: boolean; disabled: boolean }>(
  'notifications_send',
  `with u as (
    select ${accountDisabledSql('$1')} as disabled
  ), c as (
    insert into notification_counters (user_id, category, day, count) select $1, $2, $3::date, case when u.disabled then 0 else 1 end from u
    on conflict (user_id, category, day) do update set count = notification_counters.count + excluded.count
    returning ($4::int is not null and count > $4::int) as over
  ), n as (
    insert into notifications (id, user_id, category, title, body, markdown, link, data, priority, listed, source_key, created_at)
    select $5, $1, $2, $6, $7, $8, $9, $10::jsonb, $11, $12::boolean and not c.over and not u.disabled, $13, $14::timestamptz from c, u
  ), d as (
    insert into notification_deliveries (id, notification_id, channel, status, reason, attempts, created_at, updated_at, sent_at, held_until)
    select d.id, $5, d.channel, case when u.disabled or c.over then 'suppressed' else d.status end,
      case when u.disabled then '${ACCOUNT_DISABLED}' when c.over then 'daily_limit' else d.reason end, 0,
      $14::timestamptz, $14::timestamptz, case when u.disabled or c.over then null else d.sent_at end, case when u.disabled or c.over then null else d.held_until end
    from c, u, unnest($15::uuid[], $16::text[], $17::text[], $18::text[], $19::timestamptz[], $20::timestamptz[]) as d(id, channel, status, reason, sent_at, held_until)
  )
  select c.over, u.disabled from c, u`,
);

export function createNotificationsRepository(db: Db) {
  const owned = (userId: string, id: string) => and(eq(notifications.id, id), eq(notifications.userId, userId));
  const unread = (userId: string) => and(eq(notifications.userId, userId), eq(notifications.listed, true), isNull(notifications.readAt));
  // Built once: a send whose recipient is not in the process's cache runs it (on PostgreSQL each connection parses it once).
  const preferences = db.select().from(notificationPreferences).where(eq(notificationPreferences.userId, sql.placeholder('userId'))).prepare('notifications_preferences');
  return {
    /**
     * The notification and its deliveries in one statement (a data-modifying CTE) that also counts it toward the
     * day's limit of its category: one round trip, no transaction needed for them alone, and a send is counted
     * only if it is stored. Over the limit (`limit`: null for none), every delivery is stored suppressed
     * (`daily_limit`) and the notification unlisted, whatever was planned; to an account disabled (or deleted) by
     * then, every delivery is stored suppressed (`account_disabled`), the notification unlisted and not counted
     * (nothing was sent: a re-enabled account's day is not used up by what it never got). The rows are made here,
     * ids and times included, so only that verdict is read back.
     */
    async insert(
      tx: Db,
      values: Omit<NotificationRow, 'id' | 'readAt' | 'createdAt'>,
      deliveries: { channel: Channel; status: DeliveryStatus; reason: string | null; heldUntil: Date | null }[],
      limit: number | null,
    ): Promise<{ row: NotificationRow; deliveries: DeliveryRow[] }> {
      const now = new Date();
      const at = now.toISOString();
      const id = uuidv7();
      const planned = deliveries.map((d) => ({ ...d, id: uuidv7(), sentAt: d.status === 'sent' ? now : null }));
      const [verdict] = await insertSend(tx, [
        values.userId, values.category, at.slice(0, 10), limit, id, values.title, values.body, values.markdown, values.link, JSON.stringify(values.data),
        values.priority, values.listed, values.sourceKey, at, planned.map((d) => d.id), planned.map((d) => d.channel), planned.map((d) => d.status),
        planned.map((d) => d.reason), planned.map((d) => d.sentAt && at), planned.map((d) => d.heldUntil?.toISOString() ?? null),
      ]);
      const { over, disabled } = verdict!;
      const suppressed = disabled ? ACCOUNT_DISABLED : over ? 'daily_limit' : null;
      const row: NotificationRow = { ...values, listed: values.listed && !suppressed, id, readAt: null, createdAt: now };
      const rows: DeliveryRow[] = planned.map((d) => ({
        ...(suppressed ? { ...d, status: 'suppressed' as const, reason: suppressed, heldUntil: null, sentAt: null } : d),
        notificationId: id,
        attempts: 0,
        createdAt: now,
        updatedAt: now,
        externalId: null,
      }));
      return { row, deliveries: rows };
    },
    async get(userId: string, id: string): Promise<NotificationRow | undefined> {
      const [row] = await db.select().from(notifications).where(owned(userId, id));
      return row;
    },
    async bySource(userId: string, sourceKey: string): Promise<NotificationRow | undefined> {
      const [row] = await db.select().from(notifications).where(and(eq(notifications.userId, userId), eq(notifications.sourceKey, sourceKey)));
      return row;
    },
    async byId(id: string): Promise<NotificationRow | undefined> {
      const [row] = await db.select().from(notifications).where(eq(notifications.id, id));
      return row;
    },
    list(userId: string, opts: { limit: number; cursor?: string; unread?: boolean }): Promise<NotificationRow[]> {
      const where: (SQL | undefined)[] = [opts.unread ? unread(userId) : and(eq(notifications.userId, userId), eq(notifications.listed, true))];
      if (opts.cursor) where.push(lt(notifications.id, opts.cursor));
      return db.select().from(notifications).where(and(...where)).orderBy(desc(notifications.id)).limit(opts.limit);
    },
    async unreadCount(userId: string): Promise<number> {
      const [row] = await db.select({ n: count() }).from(notifications).where(unread(userId));
      return Number(row!.n);
    },
    async markRead(userId: string, id: string): Promise<NotificationRow | undefined> {
      const [row] = await db.update(notifications).set({ readAt: sql`coalesce(${notifications.readAt}, now())` }).where(owned(userId, id)).returning();
      return row;
    },
    async markAllRead(userId: string): Promise<number> {
      const rows = await db.update(notifications).set({ readAt: new Date() }).where(unread(userId)).returning({ id: notifications.id });
      return rows.length;
    },
    async delete(userId: string, id: string): Promise<boolean> {
      const rows = await db.delete(notifications).where(owned(userId, id)).returning({ id: notifications.id });
      return rows.length > 0;
    },
    deliveries(ids: string[]): Promise<DeliveryRow[]> {
      if (!ids.length) return Promise.resolve([]);
      return db.select().from(notificationDeliveries).where(inArray(notificationDeliveries.notificationId, ids));
    },
    async delivery(id: string): Promise<DeliveryRow | undefined> {
      const [row] = await db.select().from(notificationDeliveries).where(eq(notificationDeliveries.id, id));
      return row;
    },
    async setDelivery(id: string, set: { status: DeliveryStatus; reason?: string | null; attempts?: number; externalId?: string | null }, tx: Db = db): Promise<void> {
      const reached = set.status === 'sent' || set.status === 'delivered';
      await tx
        .update(notificationDeliveries)
        .set({ ...set, updatedAt: new Date(), sentAt: reached ? new Date() : undefined, heldUntil: set.status === 'held' ? undefined : null })
        .where(eq(notificationDeliveries.id, id));
    },
    /** The channel service confirmed delivery of what it knows as `externalId` (an SMS status callback). */
    async markDelivered(channel: Channel, externalId: string): Promise<boolean> {
      const rows = await db
        .update(notificationDeliveries)
        .set({ status: 'delivered', updatedAt: new Date() })
        .where(and(eq(notificationDeliveries.channel, channel), eq(notificationDeliveries.externalId, externalId), inArray(notificationDeliveries.status, ['sent', 'delivered'])))
        .returning({ id: notificationDeliveries.id });
      return rows.length > 0;
    },
    /** The channel service reports that what it knows as `externalId` did not arrive (an SMS status callback's `undelivered` or `failed`). */
    async markUndelivered(channel: Channel, externalId: string, reason: string): Promise<boolean> {
      const rows = await db
        .update(notificationDeliveries)
        .set({ status: 'failed', reason, updatedAt: new Date() })
        .where(and(eq(notificationDeliveries.channel, channel), eq(notificationDeliveries.externalId, externalId), eq(notificationDeliveries.status, 'sent')))
        .returning({ id: notificationDeliveries.id });
      return rows.length > 0;
    },
    /** Users with emails held for their digest, and since when. */
    heldDigests(): Promise<{ userId: string; oldest: Date }[]> {
      return db
        .select({ userId: notifications.userId, oldest: min(notifications.createdAt).mapWith((v) => new Date(v)) })
        .from(notificationDeliveries)
        .innerJoin(notifications, eq(notifications.id, notificationDeliveries.notificationId))
        .where(and(eq(notificationDeliveries.status, 'held'), eq(notificationDeliveries.reason, 'digest')))
        .groupBy(notifications.userId) as Promise<{ userId: string; oldest: Date }[]>;
    },
    /** Takes a user's held digest emails for one digest (queued, reason `digest`); rows another transaction holds are left to it. */
    async claimDigest(tx: Db, userId: string): Promise<string[]> {
      const result = await tx.execute(sql`
        update ${notificationDeliveries} set status = 'queued', updated_at = now()
        where id in (
          select d.id from ${notificationDeliveries} d join ${notifications} n on n.id = d.notification_id
          where n.user_id = ${userId} and d.status = 'held' and d.reason = 'digest'
          for update of d skip locked)
        returning id`);
      return (result as unknown as { rows: { id: string }[] }).rows.map((r) => r.id);
    },
    /** The digest's notifications, oldest first: those of these deliveries still queued for it. */
    async digestItems(deliveryIds: string[]): Promise<{ deliveryId: string; notification: NotificationRow }[]> {
      if (!deliveryIds.length) return [];
      const rows = await db
        .select({ deliveryId: notificationDeliveries.id, notification: notifications })
        .from(notificationDeliveries)
        .innerJoin(notifications, eq(notifications.id, notificationDeliveries.notificationId))
        .where(and(inArray(notificationDeliveries.id, deliveryIds), eq(notificationDeliveries.status, 'queued'), eq(notificationDeliveries.reason, 'digest')))
        .orderBy(asc(notifications.id));
      return rows;
    },
    preferences(userId: string) {
      return preferences.execute({ userId });
    },
    async setPreferences(userId: string, choices: { category: string; channel: Channel; enabled: boolean }[]): Promise<void> {
      if (!choices.length) return;
      await db
        .insert(notificationPreferences)
        .values(choices.map((c) => ({ userId, ...c })))
        .onConflictDoUpdate({
          target: [notificationPreferences.userId, notificationPreferences.category, notificationPreferences.channel],
          set: { enabled: sql`excluded.enabled`, updatedAt: new Date() },
        });
    },
  };
}

export type NotificationsRepository = ReturnType<typeof createNotificationsRepository>;
