import { and, isNotNull, lt, or } from 'drizzle-orm';
import type { Db } from '../../platform/db/database.ts';
import { oauthFlows, oneTimeTokens, sessions } from './schema.ts';

const DAY_MS = 24 * 3600 * 1000;

/**
 * Deletes what sign-in no longer needs: expired sessions, revoked ones a day
 * after revocation, one-time tokens a day after expiry, and abandoned OAuth flows.
 */
export async function purgeExpiredAuthRows(db: Db, now = new Date()): Promise<void> {
  const dayAgo = new Date(now.getTime() - DAY_MS);
  await db.delete(sessions).where(or(lt(sessions.expiresAt, now), and(isNotNull(sessions.revokedAt), lt(sessions.revokedAt, dayAgo))));
  await db.delete(oneTimeTokens).where(lt(oneTimeTokens.expiresAt, dayAgo));
  await db.delete(oauthFlows).where(lt(oauthFlows.expiresAt, now));
}
