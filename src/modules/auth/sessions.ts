import { and, desc, eq, gt, isNull, ne, sql } from 'drizzle-orm';
import { Forbidden } from '../../errors.ts';
import { inTransaction, type Db } from '../../platform/db/database.ts';
import { randomToken, sha256Hex } from '../../platform/crypto/cipher.ts';
import type { JobQueue } from '../../platform/queue/queue.ts';
import { accountOf } from '../users/index.ts';
import { accessRevoked } from './access-revoked.ts';
import { refreshTokens, sessions } from './schema.ts';

export interface DeviceInfo {
  ip?: string;
  userAgent?: string;
}

export type RefreshOutcome =
  | { ok: true; sessionId: string; userId: string; refreshToken: string }
  | { ok: false; reason: 'unknown' | 'expired' | 'revoked' | 'reused' | 'disabled'; sessionId?: string; userId?: string };

/** Refresh tokens are `<sessionId>.<secret>`-free opaque strings; only their SHA-256 is stored. */
const newRefreshToken = () => `rt_${randomToken(32)}`;

/**
 * Sessions and their refresh-token families. Every refresh rotates the token;
 * presenting a token that was already rotated (outside a short grace window for
 * concurrent refreshes) revokes the whole session.
 */
export function createSessions(
  db: Db,
  opts: {
    refreshTtl: number;
    reuseGrace: number;
    /** The account's row, locked until the transaction ends (the users module's). */
    lockAccount: (userId: string, tx: Db) => Promise<{ passwordHash: string | null; disabledAt: Date | null } | undefined>;
    /** Queues `user.access_revoked` when a refresh token used twice revokes its session. */
    queue: Pick<JobQueue, 'enqueue'>;
  },
) {
  return {
    /**
     * Opens a session if the account's password is still `passwordHash` (null: none), the one the sign-in
     * checked; undefined otherwise. A password change or reset revokes the sessions that exist when it runs,
     * and would miss one opened by a sign-in that checked the old password just before: the user's row is
     * locked while the session is written, so the change waits for it, or it sees the change. So with an
     * administrator disabling the account: disabled first, no session (403 account_disabled); here first, the
     * disabling revokes the session opened.
     */
    async open(userId: string, method: string, device: DeviceInfo, passwordHash: string | null) {
      return inTransaction(db, async (tx) => {
        const current = await opts.lockAccount(userId, tx);
        if (!current || current.passwordHash !== passwordHash) return undefined;
        if (current.disabledAt) throw Forbidden('This account is disabled', 'account_disabled');
        const [session] = await tx
          .insert(sessions)
          .values({
            userId,
            method,
            ip: device.ip ?? null,
            userAgent: device.userAgent?.slice(0, 512) ?? null,
            expiresAt: new Date(Date.now() + opts.refreshTtl * 1000),
          })
          .returning();
        const refreshToken = newRefreshToken();
        await tx.insert(refreshTokens).values({ sessionId: session!.id, tokenHash: sha256Hex(refreshToken) });
        return { session: session!, refreshToken };
      });
    },

    async rotate(presented: string, device: DeviceInfo): Promise<RefreshOutcome> {
      return inTransaction(db, async (tx) => {
        const account = accountOf(sessions.userId);
        const [found] = await tx
          .select({ token: refreshTokens, session: sessions, disabledAt: account.disabledAt })
          .from(refreshTokens)
          .innerJoin(sessions, eq(sessions.id, refreshTokens.sessionId))
          .innerJoin(account.table, account.on)
          .where(eq(refreshTokens.tokenHash, sha256Hex(presented)))
          .for('update', { of: refreshTokens });
        if (!found) return { ok: false, reason: 'unknown' } as const;
        const { token, session } = found;
        const ids = { sessionId: session.id, userId: session.userId };
        if (session.revokedAt) return { ok: false, reason: 'revoked', ...ids } as const;
        if (session.expiresAt <= new Date()) return { ok: false, reason: 'expired', ...ids } as const;
        if (found.disabledAt) return { ok: false, reason: 'disabled', ...ids } as const;
        if (token.rotatedAt && Date.now() - token.rotatedAt.getTime() > opts.reuseGrace * 1000) {
          await tx
            .update(sessions)
            .set({ revokedAt: new Date(), revokedReason: 'refresh_token_reuse' })
            .where(eq(sessions.id, session.id));
          // Whoever holds the other copy may hold a socket opened with the session's access token too.
          await accessRevoked.announce(opts.queue, { userId: session.userId }, tx);
          return { ok: false, reason: 'reused', ...ids } as const;
        }
        const refreshToken = newRefreshToken();
        if (!token.rotatedAt) await tx.update(refreshTokens).set({ rotatedAt: new Date() }).where(eq(refreshTokens.id, token.id));
        await tx.insert(refreshTokens).values({ sessionId: session.id, tokenHash: sha256Hex(refreshToken) });
        await tx
          .update(sessions)
          .set({
            lastUsedAt: new Date(),
            ip: device.ip ?? session.ip,
            userAgent: device.userAgent?.slice(0, 512) ?? session.userAgent,
          })
          .where(eq(sessions.id, session.id));
        return { ok: true, refreshToken, ...ids } as const;
      });
    },

    /** The session a refresh token belongs to, if the token is known. */
    async byRefreshToken(presented: string) {
      const [row] = await db
        .select({ session: sessions })
        .from(refreshTokens)
        .innerJoin(sessions, eq(sessions.id, refreshTokens.sessionId))
        .where(eq(refreshTokens.tokenHash, sha256Hex(presented)));
      return row?.session;
    },

    /** Whether an access token's session still stands, and its user's state, in one query. */
    async status(sessionId: string) {
      const account = accountOf(sessions.userId);
      const [row] = await db
        .select({
          userId: sessions.userId,
          revokedAt: sessions.revokedAt,
          expiresAt: sessions.expiresAt,
          createdAt: sessions.createdAt,
          disabledAt: account.disabledAt,
          role: account.role,
        })
        .from(sessions)
        .innerJoin(account.table, account.on)
        .where(eq(sessions.id, sessionId));
      return row;
    },

    listActive(userId: string) {
      return db
        .select()
        .from(sessions)
        .where(and(eq(sessions.userId, userId), isNull(sessions.revokedAt), gt(sessions.expiresAt, sql`now()`)))
        .orderBy(desc(sessions.lastUsedAt));
    },

    /**
     * Revokes one session of a user, in the caller's transaction if given; false if it was not theirs or had ended.
     * The caller queues `accessRevoked` in the same transaction (so with revokeAll), with what else it ends.
     */
    async revoke(userId: string, sessionId: string, reason: string, tx: Db = db): Promise<boolean> {
      const rows = await tx
        .update(sessions)
        .set({ revokedAt: new Date(), revokedReason: reason })
        .where(and(eq(sessions.id, sessionId), eq(sessions.userId, userId), isNull(sessions.revokedAt)))
        .returning({ id: sessions.id });
      return rows.length > 0;
    },

    /** Revokes every session of a user, optionally sparing one. Returns how many. */
    async revokeAll(userId: string, reason: string, except?: string, tx: Db = db): Promise<number> {
      const conds = [eq(sessions.userId, userId), isNull(sessions.revokedAt)];
      if (except) conds.push(ne(sessions.id, except));
      const rows = await tx
        .update(sessions)
        .set({ revokedAt: new Date(), revokedReason: reason })
        .where(and(...conds))
        .returning({ id: sessions.id });
      return rows.length;
    },
  };
}

export type Sessions = ReturnType<typeof createSessions>;
