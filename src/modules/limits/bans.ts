import { and, desc, eq, gt, isNotNull, isNull, lt, lte, or, type SQL } from 'drizzle-orm';
import { Conflict, NotFound, ValidationError } from '../../errors.ts';
import type { Broadcast } from '../../platform/broadcast/broadcast.ts';
import { ipSubject } from '../../platform/net/client-address.ts';
import { inTransaction, type Db } from '../../platform/db/database.ts';
import type { Logger } from '../../platform/observability/logger.ts';
import type { JobQueue } from '../../platform/queue/queue.ts';
import type { Audit, AuditContext } from '../audit/index.ts';
import { accessRevoked } from '../auth/index.ts';
import { createBanCache, type ActiveBan } from './ban-cache.ts';
import { bans, type BanKind, type BanRow } from './schema.ts';

/** Broadcast topic: a ban was set or lifted; every instance updates its cache. */
const TOPIC = 'limits.bans';

type Notice = { op: 'ban'; id: string; kind: BanKind; subject: string; expiresAt: string } | { op: 'lift'; id: string; kind: BanKind; subject: string };

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** The subject as stored: a lower-case UUID for users and keys, an IPv4 address or an IPv6 /64 for IPs (see ipSubject); 400 otherwise. */
export function banSubject(kind: BanKind, subject: string): string {
  if (kind === 'ip') {
    const ip = ipSubject(subject);
    if (!ip) throw ValidationError('subject must be an IPv4 or IPv6 address (or an IPv6 /64) for an ip ban', 'invalid_ban_subject');
    return ip;
  }
  if (!UUID.test(subject)) throw ValidationError(`subject must be a ${kind === 'user' ? 'user' : 'API key'} id (a UUID)`, 'invalid_ban_subject');
  return subject.toLowerCase();
}

export interface BansDeps {
  db: Db;
  audit: Audit;
  broadcast: Broadcast;
  /** Whether a user exists, and whose an API key is (undefined: no such key), asked of their owners before one is banned. */
  exists: { user(id: string): Promise<boolean>; apiKey(id: string): Promise<string | undefined> };
  /** Queues `user.access_revoked` for the banned user, or the banned key's owner, in the ban's transaction. */
  queue: Pick<JobQueue, 'enqueue'>;
  logger?: Logger;
  /** How often the in-process bans are re-read from the database, bounding what a lost notice leaves stale. */
  refreshMs?: number;
  /** Runs after a lift has committed (e.g. to clear the subject's counters). */
  onLifted?: (ban: BanRow) => Promise<void>;
}

export interface NewBan {
  kind: BanKind;
  subject: string;
  seconds: number;
  reason: string;
  violations?: number;
}

/** Bans in the database, mirrored in process on every instance. */
export function createBans(deps: BansDeps) {
  const { db } = deps;
  const refreshMs = deps.refreshMs ?? 30_000;
  const cache = createBanCache();
  let loadedAt: number | undefined;
  let loading: Promise<void> | undefined;

  /** Told of each ban as it reaches this instance (every instance hears every ban, the one that set it included). */
  const banListeners = new Set<(ban: ActiveBan) => void>();

  void deps.broadcast.subscribe(TOPIC, (raw) => {
    const n = JSON.parse(raw) as Notice;
    if (n.op === 'lift') return cache.lift(n);
    const ban = { id: n.id, kind: n.kind, subject: n.subject, expiresAt: new Date(n.expiresAt) };
    // In the cache first: a listener that checks a caller again sees the ban.
    cache.add(ban);
    for (const listener of banListeners) {
      try {
        listener(ban);
      } catch (err) {
        deps.logger?.error({ err, banId: ban.id }, 'a ban listener failed');
      }
    }
  });

  function reload(): Promise<void> {
    loading ??= (async () => {
      const startedAt = cache.startReload();
      try {
        const rows = await db
          .select({ id: bans.id, kind: bans.kind, subject: bans.subject, expiresAt: bans.expiresAt })
          .from(bans)
          .where(and(isNull(bans.liftedAt), gt(bans.expiresAt, new Date())));
        cache.replace(rows, startedAt);
        loadedAt = Date.now();
      } catch (err) {
        deps.logger?.error({ err }, 'could not load bans; retrying on a later request');
        // Try again in a second rather than on every request while the database is away.
        loadedAt = (loadedAt ?? Date.now()) + Math.min(1_000, refreshMs) - refreshMs;
      } finally {
        loading = undefined;
      }
    })();
    return loading;
  }

  async function publish(notice: Notice) {
    if (notice.op === 'ban') cache.add({ ...notice, expiresAt: new Date(notice.expiresAt) });
    else cache.lift(notice);
    await deps.broadcast
      .publish(TOPIC, JSON.stringify(notice))
      .catch((err: unknown) => deps.logger?.error({ err, banId: notice.id }, 'could not broadcast a ban change; other instances pick it up on their next reload'));
  }

  /** The user whose access a ban on this user or key ends; NotFound when there is no such user or key. */
  async function userOf(kind: 'user' | 'api_key', id: string): Promise<string> {
    if (kind === 'user') {
      if (!(await deps.exists.user(id))) throw NotFound('User', 'user_not_found');
      return id;
    }
    const owner = await deps.exists.apiKey(id);
    if (!owner) throw NotFound('API key', 'api_key_not_found');
    return owner;
  }

  return {
    /**
     * Calls `listener` with each new ban as it reaches this instance, on every instance: what holds a connection
     * open past its first check (a WebSocket) checks it again then, rather than at its next periodic check.
     */
    onBan(listener: (ban: ActiveBan) => void): void {
      banListeners.add(listener);
    },

    /** The ban in force on any of these subjects, from the in-process cache (read from the database only once, then every refreshMs in the background). */
    async find(subjects: Array<[BanKind, string]>): Promise<ActiveBan | undefined> {
      if (loadedAt === undefined) await reload();
      else if (Date.now() - loadedAt > refreshMs && !loading) void reload();
      for (const [kind, subject] of subjects) {
        const ban = cache.find(kind, subject);
        if (ban) return ban;
      }
      return undefined;
    },

    /** Whether the cache already holds a ban on the subject (so an automatic ban is not set twice). */
    isBanned: (kind: BanKind, subject: string) => cache.find(kind, subject) !== undefined,

    list(opts: { limit: number; cursor?: string; kind?: BanKind; subject?: string; active?: boolean }) {
      const where: SQL[] = [];
      const now = new Date();
      if (opts.cursor) where.push(lt(bans.id, opts.cursor));
      if (opts.kind) where.push(eq(bans.kind, opts.kind));
      if (opts.subject) where.push(eq(bans.subject, ipSubject(opts.subject) ?? opts.subject.toLowerCase()));
      if (opts.active === true) where.push(isNull(bans.liftedAt), gt(bans.expiresAt, now));
      if (opts.active === false) where.push(or(isNotNull(bans.liftedAt), lte(bans.expiresAt, now))!);
      return db.select().from(bans).where(and(...where)).orderBy(desc(bans.id)).limit(opts.limit);
    },

    /**
     * Sets a ban, audited: with `by`, an admin set it; without, Parley did (rate-limit violations, the
     * abuse throttle) and the entry has no actor. A user or key that does not exist is a 404, so a
     * mistyped id does not look like a ban in force. Takes effect on every instance at once: a banned user's
     * (or key owner's) open sockets are checked again then (`user.access_revoked`); those an IP ban refuses
     * close at their next periodic check (WS_REAUTH_MS), as whose they are is not known here.
     */
    async create(input: NewBan, by?: { adminId: string } & AuditContext): Promise<BanRow> {
      const subject = banSubject(input.kind, input.subject);
      if (by && input.kind === 'user' && subject === by.adminId) throw Conflict('You cannot ban your own account', 'cannot_ban_self');
      const userId = input.kind === 'ip' ? undefined : await userOf(input.kind, subject);
      const row = await inTransaction(db, async (tx) => {
        const [row] = await tx
          .insert(bans)
          .values({ kind: input.kind, subject, reason: input.reason, violations: input.violations ?? 0, expiresAt: new Date(Date.now() + input.seconds * 1000) })
          .returning();
        const { adminId, ...ctx } = by ?? { adminId: null };
        await deps.audit.record(
          {
            action: 'ban.created',
            actorId: adminId,
            userId: input.kind === 'user' ? subject : null,
            ...ctx,
            metadata: { banId: row!.id, kind: input.kind, subject, seconds: input.seconds, reason: input.reason, automatic: !by },
          },
          tx,
        );
        if (userId) await accessRevoked.announce(deps.queue, { userId }, tx);
        return row!;
      });
      await publish({ op: 'ban', id: row.id, kind: row.kind, subject: row.subject, expiresAt: row.expiresAt.toISOString() });
      return row;
    },

    /** Ends a ban early. Lifting a ban already lifted changes nothing; an unknown id is a 404. */
    async lift(id: string, adminId: string, ctx: AuditContext = {}): Promise<BanRow> {
      const lifted = await inTransaction(db, async (tx) => {
        const [row] = await tx.update(bans).set({ liftedAt: new Date(), liftedBy: adminId }).where(and(eq(bans.id, id), isNull(bans.liftedAt))).returning();
        if (!row) return undefined;
        await deps.audit.record(
          { action: 'ban.lifted', actorId: adminId, userId: row.kind === 'user' ? row.subject : null, ...ctx, metadata: { banId: id, kind: row.kind, subject: row.subject } },
          tx,
        );
        return row;
      });
      if (!lifted) {
        const [row] = await db.select().from(bans).where(eq(bans.id, id));
        if (!row) throw NotFound('Ban', 'ban_not_found');
        return row;
      }
      await publish({ op: 'lift', id, kind: lifted.kind, subject: lifted.subject });
      await deps.onLifted?.(lifted).catch((err: unknown) => deps.logger?.warn({ err, banId: id }, 'could not reset the counters of a lifted ban'));
      return lifted;
    },

    /** Deletes the bans that ended (expired or lifted) before `cutoff`; their audit entries stay. */
    async purgeEnded(cutoff: Date): Promise<number> {
      const rows = await db.delete(bans).where(or(lt(bans.expiresAt, cutoff), lt(bans.liftedAt, cutoff))).returning({ id: bans.id });
      return rows.length;
    },
  };
}

export type Bans = ReturnType<typeof createBans>;
