import { and, eq, ne, sql } from 'drizzle-orm';
import { sha256Hex } from '../../platform/crypto/cipher.ts';
import type { Db } from '../../platform/db/database.ts';
import { knownDevices } from './schema.ts';

/** Longest User-Agent kept to describe a device. */
const DESCRIPTION_CHARS = 200;

/**
 * A device's fingerprint: the SHA-256 of its User-Agent lower-cased, with every version number (`126.0.6478.61`,
 * `10_15_7`) made one placeholder and spaces collapsed. So a browser that updates itself stays the same device,
 * while another browser, another OS or another app is a new one. A request without a User-Agent is one device,
 * "unknown". Nothing else is known reliably: the IP changes with networks, so it is not part of it.
 */
export function deviceFingerprint(userAgent: string | undefined): string {
  const family = (userAgent ?? '')
    .toLowerCase()
    .replace(/\d+(?:[._]\d+)*/g, '#')
    .replace(/\s+/g, ' ')
    .trim();
  return sha256Hex(family);
}

/** What people read to recognise a device: its User-Agent, trimmed. */
export const describeDevice = (userAgent: string | undefined): string => userAgent?.replace(/\s+/g, ' ').trim().slice(0, DESCRIPTION_CHARS) || 'an unknown device';

export interface SeenDevice {
  /** Not signed in from before. */
  isNew: boolean;
  /** The user had signed in from other devices before: only then is a new one worth telling them about. */
  hadOthers: boolean;
  description: string;
}

/** The devices each user has signed in from. */
export function createKnownDevices(db: Db) {
  return {
    /** Forgets every device of the user, within `tx`; returns how many there were. */
    async forgetAll(userId: string, tx: Db = db): Promise<number> {
      const rows = await tx.delete(knownDevices).where(eq(knownDevices.userId, userId)).returning({ fingerprint: knownDevices.fingerprint });
      return rows.length;
    },

    /** Records a sign-in from this device (first seen, or seen again) and says whether it is new to the user. */
    async seen(userId: string, device: { userAgent?: string; ip?: string }, tx: Db = db): Promise<SeenDevice> {
      const fingerprint = deviceFingerprint(device.userAgent);
      const description = describeDevice(device.userAgent);
      const inserted = await tx
        .insert(knownDevices)
        .values({ userId, fingerprint, description, lastIp: device.ip ?? null })
        .onConflictDoNothing()
        .returning({ userId: knownDevices.userId });
      if (!inserted.length) {
        await tx
          .update(knownDevices)
          .set({ description, lastSeenAt: sql`now()`, lastIp: device.ip ?? null })
          .where(and(eq(knownDevices.userId, userId), eq(knownDevices.fingerprint, fingerprint)));
        return { isNew: false, hadOthers: true, description };
      }
      const [other] = await tx
        .select({ fingerprint: knownDevices.fingerprint })
        .from(knownDevices)
        .where(and(eq(knownDevices.userId, userId), ne(knownDevices.fingerprint, fingerprint)))
        .limit(1);
      return { isNew: true, hadOthers: !!other, description };
    },
  };
}

export type KnownDevices = ReturnType<typeof createKnownDevices>;
