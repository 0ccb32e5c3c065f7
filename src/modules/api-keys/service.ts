import { timingSafeEqual } from 'node:crypto';
import { and, count, desc, eq, gte, lt, or, isNull, sql, type SQL } from 'drizzle-orm';
import { Conflict, NotFound, ValidationError } from '../../errors.ts';
import { inTransaction, lockWithinTransaction, type Db } from '../../platform/db/database.ts';
import { randomToken, sha256Hex } from '../../platform/crypto/cipher.ts';
import type { Broadcast } from '../../platform/broadcast/broadcast.ts';
import type { Logger } from '../../platform/observability/logger.ts';
import type { JobQueue } from '../../platform/queue/queue.ts';
import type { Audit, AuditContext } from '../audit/index.ts';
import { accountOf } from '../users/index.ts';
import { createVerificationCache } from './cache.ts';
import { keyDeleted } from './deleted.ts';
import { apiKeys } from './schema.ts';

export const API_KEY_PREFIX = 'pk_';

/** What an API key may be limited to. A key with no scopes may do whatever its owner may, except manage keys and sessions. */
export const API_KEY_SCOPES = ['profile:read', 'profile:write', 'chat', 'models:read', 'files', 'usage:read', 'jobs:read', 'documents', 'knowledge', 'webhooks', 'notifications', 'notifications:send', 'sandbox'] as const;
export type ApiKeyScope = (typeof API_KEY_SCOPES)[number];

// last_used_at is written at most this often per key, so authenticating is not a write per request.
const LAST_USED_RESOLUTION_MS = 60_000;

export type ApiKeyRow = typeof apiKeys.$inferSelect;

/** A verified key with its owner's state, as the authenticator needs it. */
export interface VerifiedKey {
  userId: string;
  key: ApiKeyRow;
  role: 'user' | 'admin';
  disabledAt: Date | null;
}

/** Broadcast topic: "drop what you cached for this user's keys". */
const FORGET_TOPIC = 'api-keys.forget-user';

export interface ApiKeysDeps {
  audit: Audit;
  broadcast: Broadcast;
  /** Queues `api_key.deleted` in the deletion's transaction. */
  queue: Pick<JobQueue, 'enqueue'>;
  /** Keys one user may hold at once (API_KEYS_MAX_PER_USER). */
  maxPerUser: number;
  logger?: Logger;
  /**
   * How long a verified key is trusted without asking the database. A change
   * reaches every instance at once over the broadcast; this bounds it should a
   * notice be lost (a Redis reconnect).
   */
  cacheTtlMs?: number;
}

export const toPublicApiKey = (k: ApiKeyRow) => ({
  id: k.id,
  name: k.name,
  prefix: API_KEY_PREFIX,
  last4: k.last4,
  scopes: k.scopes,
  expiresAt: k.expiresAt?.toISOString() ?? null,
  lastUsedAt: k.lastUsedAt?.toISOString() ?? null,
  createdAt: k.createdAt.toISOString(),
});

export function createApiKeys(db: Db, deps: ApiKeysDeps) {
  const cache = createVerificationCache<VerifiedKey>({ ttlMs: deps.cacheTtlMs ?? 30_000, maxEntries: 10_000 });
  // One database lookup per key in flight: when a cached key lapses under load, its concurrent
  // requests wait for the same lookup. Forgetting any user drops them all (a lookup that began
  // before the change is neither shared further nor stored; forgets are rare).
  const lookups = new Map<string, Promise<VerifiedKey | undefined>>();
  const forgetLocally = (userId: string) => {
    cache.forgetUser(userId);
    lookups.clear();
  };
  void deps.broadcast.subscribe(FORGET_TOPIC, forgetLocally);

  /** last_used_at is bookkeeping: written off the request path, at most once a minute per key. */
  function touch(key: ApiKeyRow) {
    const now = Date.now();
    if (key.lastUsedAt && now - key.lastUsedAt.getTime() <= LAST_USED_RESOLUTION_MS) return;
    key.lastUsedAt = new Date(now);
    db.update(apiKeys)
      .set({ lastUsedAt: key.lastUsedAt })
      .where(and(eq(apiKeys.id, key.id), or(isNull(apiKeys.lastUsedAt), lt(apiKeys.lastUsedAt, new Date(now - LAST_USED_RESOLUTION_MS)))))
      .catch((err: unknown) => deps.logger?.warn({ err, apiKeyId: key.id }, 'could not record API key use'));
  }

  /**
   * Makes every instance stop trusting what it cached about this user's keys.
   * Call it after the change has committed.
   */
  async function forgetUser(userId: string) {
    forgetLocally(userId);
    await deps.broadcast.publish(FORGET_TOPIC, userId).catch((err: unknown) => deps.logger?.error({ err, userId }, 'could not broadcast an API key change; other instances trust their cache until it expires'));
  }

  async function lookUp(hash: string): Promise<VerifiedKey | undefined> {
    const startedAt = cache.startLookup();
    const account = accountOf(apiKeys.userId);
    const [row] = await db
      .select({ key: apiKeys, role: account.role, disabledAt: account.disabledAt })
      .from(apiKeys)
      .innerJoin(account.table, account.on)
      .where(eq(apiKeys.keyHash, hash));
    // The index lookup already matched; the constant-time check guards against any collation surprise.
    if (!row || !timingSafeEqual(Buffer.from(row.key.keyHash), Buffer.from(hash))) return undefined;
    const found = { userId: row.key.userId, ...row };
    cache.set(hash, found, startedAt);
    return found;
  }

  function sharedLookUp(hash: string): Promise<VerifiedKey | undefined> {
    const lookup: Promise<VerifiedKey | undefined> = lookUp(hash).finally(() => {
      if (lookups.get(hash) === lookup) lookups.delete(hash);
    });
    lookups.set(hash, lookup);
    return lookup;
  }

  return {
    forgetUser,

    /** Issues a key. The secret is returned here and never again: only its SHA-256 is stored. */
    async create(userId: string, input: { name: string; scopes?: ApiKeyScope[]; expiresAt?: Date | null }, ctx: AuditContext = {}) {
      if (input.expiresAt && input.expiresAt.getTime() <= Date.now()) throw ValidationError('expiresAt must be in the future', 'expires_at_in_past');
      const secret = `${API_KEY_PREFIX}${randomToken(32)}`;
      return inTransaction(db, async (tx) => {
        // Creations side by side take turns here, so each counts the keys the others made: none passes the cap.
        await lockWithinTransaction(tx, `api-keys:${userId}`);
        const [held] = await tx.select({ n: count() }).from(apiKeys).where(eq(apiKeys.userId, userId));
        if (Number(held?.n ?? 0) >= deps.maxPerUser) throw Conflict(`At most ${deps.maxPerUser} API keys per user: delete one first`, 'api_key_limit');
        const [row] = await tx
          .insert(apiKeys)
          .values({
            userId,
            name: input.name,
            keyHash: sha256Hex(secret),
            last4: secret.slice(-4),
            scopes: [...new Set(input.scopes ?? [])],
            expiresAt: input.expiresAt ?? null,
          })
          .returning();
        await deps.audit.record({ action: 'api_key.created', userId, ...ctx, metadata: { apiKeyId: row!.id, name: row!.name, scopes: row!.scopes } }, tx);
        return { key: row!, secret };
      });
    },

    list(userId: string, opts: { limit: number; cursor?: string }) {
      const where: SQL[] = [eq(apiKeys.userId, userId)];
      if (opts.cursor) where.push(lt(apiKeys.id, opts.cursor));
      return db.select().from(apiKeys).where(and(...where)).orderBy(desc(apiKeys.id)).limit(opts.limit);
    },

    async get(userId: string, id: string) {
      const [row] = await db.select().from(apiKeys).where(and(eq(apiKeys.id, id), eq(apiKeys.userId, userId)));
      if (!row) throw NotFound('API key', 'api_key_not_found');
      return row;
    },

    async delete(userId: string, id: string, ctx: AuditContext = {}) {
      const deleted = await inTransaction(db, async (tx) => {
        const rows = await tx.delete(apiKeys).where(and(eq(apiKeys.id, id), eq(apiKeys.userId, userId))).returning();
        if (!rows.length) throw NotFound('API key', 'api_key_not_found');
        await deps.audit.record({ action: 'api_key.deleted', userId, ...ctx, metadata: { apiKeyId: id, name: rows[0]!.name } }, tx);
        // Announced once committed, and always then: what other modules keep about the key (budgets) goes with it.
        await keyDeleted.announce(deps.queue, { userId, apiKeyId: id }, tx);
        return rows[0]!;
      });
      await forgetUser(userId);
      return deleted;
    },

    /**
     * Deletes every key of the user in the caller's transaction; returns their ids. Call `forgetUser` once it
     * commits, so no instance keeps trusting a cached one.
     */
    async deleteAllOf(userId: string, tx: Db = db): Promise<string[]> {
      const rows = await tx.delete(apiKeys).where(eq(apiKeys.userId, userId)).returning({ id: apiKeys.id });
      return rows.map((r) => r.id);
    },

    /** The user who owns a key, whoever asks (admin bans: a key's ban ends its owner's sockets on it); undefined if there is no such key. */
    async ownerOf(id: string): Promise<string | undefined> {
      const [row] = await db.select({ userId: apiKeys.userId }).from(apiKeys).where(eq(apiKeys.id, id));
      return row?.userId;
    },

    /** Whether this user owns this key (budgets on one's own keys). */
    async owns(userId: string, id: string): Promise<boolean> {
      const [row] = await db.select({ id: apiKeys.id }).from(apiKeys).where(and(eq(apiKeys.id, id), eq(apiKeys.userId, userId)));
      return row !== undefined;
    },

    /** Users who made at least `atLeast` keys since a time, with how many (the abuse check's key-burst signal). */
    createdSince(since: Date, atLeast: number): Promise<Array<{ userId: string; count: number }>> {
      return db
        .select({ userId: apiKeys.userId, count: sql<number>`count(*)::int` })
        .from(apiKeys)
        .where(gte(apiKeys.createdAt, since))
        .groupBy(apiKeys.userId)
        .having(sql`count(*) >= ${atLeast}`);
    },

    /** Resolves a presented key to its row and owner, or undefined. Never throws on bad input. */
    async verify(presented: string): Promise<VerifiedKey | undefined> {
      if (!presented.startsWith(API_KEY_PREFIX) || presented.length > 200) return undefined;
      const hash = sha256Hex(presented);
      let found = cache.get(hash);
      if (!found) {
        found = await (lookups.get(hash) ?? sharedLookUp(hash));
        if (!found) return undefined;
      }
      touch(found.key);
      return found;
    },
  };
}

export type ApiKeys = ReturnType<typeof createApiKeys>;
