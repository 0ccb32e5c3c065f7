import { randomUUID } from 'node:crypto';
import { asc, sql } from 'drizzle-orm';
import webpush from 'web-push';
import type { Cipher } from '../../../platform/crypto/cipher.ts';
import { inTransaction, type Db } from '../../../platform/db/database.ts';
import { pushVapidKeys } from './schema.ts';

export interface VapidKeyPair {
  /** Uncompressed P-256 point, base64url (65 bytes). */
  publicKey: string;
  /** The private scalar, base64url (32 bytes). */
  privateKey: string;
}

const context = (id: string) => `push-vapid:${id}`;

/**
 * The deployment's VAPID key pair, made on first use and kept (the private half encrypted) so every
 * instance and restart signs with it. Instances asking at once on an empty table take a table lock to
 * check and create, as the JWT signing keys do, so there is only ever one pair.
 */
export function vapidKeys(db: Db, cipher: Cipher) {
  let loading: Promise<VapidKeyPair> | undefined;

  async function read(): Promise<VapidKeyPair | undefined> {
    // The oldest: were a second pair ever stored, subscriptions made against the first keep working.
    const [row] = await db.select().from(pushVapidKeys).orderBy(asc(pushVapidKeys.createdAt)).limit(1);
    return row && { publicKey: row.publicKey, privateKey: cipher.decrypt(row.privateKeyEnc, context(row.id)).toString('utf8') };
  }

  async function loadOrCreate(): Promise<VapidKeyPair> {
    const existing = await read();
    if (existing) return existing;
    await inTransaction(db, async (tx) => {
      await tx.execute(sql`lock table ${pushVapidKeys} in share row exclusive mode`);
      const [row] = await tx.select({ id: pushVapidKeys.id }).from(pushVapidKeys).limit(1);
      if (row) return;
      const keys = webpush.generateVAPIDKeys();
      const id = randomUUID();
      await tx.insert(pushVapidKeys).values({ id, publicKey: keys.publicKey, privateKeyEnc: cipher.encrypt(keys.privateKey, context(id)) });
    });
    return (await read())!;
  }

  return {
    /** The pair, loaded (or made) once per process. */
    get(): Promise<VapidKeyPair> {
      loading ??= loadOrCreate().catch((err) => {
        loading = undefined;
        throw err;
      });
      return loading;
    },
  };
}

export type VapidKeys = ReturnType<typeof vapidKeys>;
