import { and, desc, eq, gt, isNull } from 'drizzle-orm';
import { randomToken, sha256Hex } from '../../platform/crypto/cipher.ts';
import { inTransaction, type Db } from '../../platform/db/database.ts';
import { oneTimeTokens } from './schema.ts';

/** `mfa_challenge`: the second step of a sign-in (mfa-challenges.ts), a signed token made there and recorded here. */
export type TokenPurpose = 'email_verification' | 'password_reset' | 'mfa_challenge';

const live = (token: string, purpose: TokenPurpose) =>
  and(
    eq(oneTimeTokens.tokenHash, sha256Hex(token)),
    eq(oneTimeTokens.purpose, purpose),
    isNull(oneTimeTokens.usedAt),
    gt(oneTimeTokens.expiresAt, new Date()),
  );

/**
 * Single-use tokens: sent by email, or handed out as a sign-in's MFA challenge.
 * Only their SHA-256 is stored; a token is used with a conditional UPDATE …
 * RETURNING, so of two concurrent uses only one gets the row back.
 */
export function createOneTimeTokens(db: Db) {
  /** Marks every unused token of this purpose as used, so none of them works any more. */
  async function voidAll(userId: string, purpose: TokenPurpose, tx: Db = db): Promise<void> {
    await tx
      .update(oneTimeTokens)
      .set({ usedAt: new Date() })
      .where(and(eq(oneTimeTokens.userId, userId), eq(oneTimeTokens.purpose, purpose), isNull(oneTimeTokens.usedAt)));
  }

  /** Stores a token as live for `ttlSeconds`, beside the user's others. */
  async function record(userId: string, purpose: TokenPurpose, token: string, ttlSeconds: number, tx: Db = db): Promise<void> {
    await tx.insert(oneTimeTokens).values({ userId, purpose, tokenHash: sha256Hex(token), expiresAt: new Date(Date.now() + ttlSeconds * 1000) });
  }

  return {
    voidAll,
    record,

    /** A new token for the user; older unused ones of the same purpose stop working. Returns the plaintext. */
    async issue(userId: string, purpose: TokenPurpose, ttlSeconds: number): Promise<string> {
      const token = randomToken(32);
      await inTransaction(db, async (tx) => {
        await voidAll(userId, purpose, tx);
        await record(userId, purpose, token, ttlSeconds, tx);
      });
      return token;
    },

    /** When a token of this purpose was last issued to the user, used or not. */
    async lastIssuedAt(userId: string, purpose: TokenPurpose): Promise<Date | undefined> {
      const [row] = await db
        .select({ createdAt: oneTimeTokens.createdAt })
        .from(oneTimeTokens)
        .where(and(eq(oneTimeTokens.userId, userId), eq(oneTimeTokens.purpose, purpose)))
        .orderBy(desc(oneTimeTokens.createdAt))
        .limit(1);
      return row?.createdAt;
    },

    /** The user a live token belongs to, without using it up. */
    async peek(token: string, purpose: TokenPurpose): Promise<string | undefined> {
      const [row] = await db.select({ userId: oneTimeTokens.userId }).from(oneTimeTokens).where(live(token, purpose));
      return row?.userId;
    },

    /** Uses a live token; returns its user, or undefined if it is unknown, expired or already used. */
    async consume(token: string, purpose: TokenPurpose, tx: Db = db): Promise<string | undefined> {
      const [row] = await tx
        .update(oneTimeTokens)
        .set({ usedAt: new Date() })
        .where(live(token, purpose))
        .returning({ userId: oneTimeTokens.userId });
      return row?.userId;
    },
  };
}

export type OneTimeTokens = ReturnType<typeof createOneTimeTokens>;
