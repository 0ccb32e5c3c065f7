import { and, isNotNull, lt, or } from 'drizzle-orm';
import type { Db } from '../../platform/db/database.ts';
import { knownDevices, oauthFlows, oneTimeTokens, sessions } from './schema.ts';

const DAY_MS = 24 * 3600 * 1000;
/** A device not signed in from for this long is forgotten: signing in from it again counts as a new device. */
export const KNOWN_DEVICE_DAYS = 365;

/**
 * Deletes what sign-in no longer needs: expired sessions, revoked ones a day
 * after revocation, one-time tokens a day after expiry, abandoned OAuth flows,
 * and devices not signed in from for a year.
 */
export async function purgeExpiredAuthRows(db: Db, now = new Date()): Promise<void> {
  const dayAgo = new Date(now.getTime() - DAY_MS);
  await db.delete(sessions).where(or(lt(sessions.expiresAt, now), and(isNotNull(sessions.revokedAt), lt(sessions.revokedAt, dayAgo))));
  await db.delete(oneTimeTokens).where(lt(oneTimeTokens.expiresAt, dayAgo));
  await db.delete(oauthFlows).where(lt(oauthFlows.expiresAt, now));
  await db.delete(knownDevices).where(lt(knownDevices.lastSeenAt, new Date(now.getTime() - KNOWN_DEVICE_DAYS * DAY_MS)));
}
