import { and, eq, lt, sql } from 'drizzle-orm';
import type { Db } from '../../../platform/db/database.ts';
import { notificationPhones, type PhoneRow } from '../schema.ts';

/** The SMS channel's table: each user's phone number and its pending verification code. */
export function createPhonesRepository(db: Db) {
  return {
    async get(userId: string): Promise<PhoneRow | undefined> {
      const [row] = await db.select().from(notificationPhones).where(eq(notificationPhones.userId, userId));
      return row;
    },
    /** A new number (or the same one again) with a fresh code: unverified until the code is entered. */
    async setPending(userId: string, phone: string, codeMac: string, codeExpiresAt: Date): Promise<void> {
      const values = { phone, verifiedAt: null, codeMac, codeExpiresAt, codeTries: 0, updatedAt: new Date() };
      await db.insert(notificationPhones).values({ userId, ...values }).onConflictDoUpdate({ target: notificationPhones.userId, set: values });
    },
    /** Counts one try at the pending code, if one is left: the row as it is now, or undefined when none was (so parallel guesses cannot exceed `maxTries`). */
    async useTry(userId: string, maxTries: number): Promise<PhoneRow | undefined> {
      const [row] = await db
        .update(notificationPhones)
        .set({ codeTries: sql`${notificationPhones.codeTries} + 1` })
        .where(and(eq(notificationPhones.userId, userId), lt(notificationPhones.codeTries, maxTries), sql`${notificationPhones.codeMac} is not null`))
        .returning();
      return row;
    },
    async markVerified(userId: string, phone: string): Promise<boolean> {
      const rows = await db
        .update(notificationPhones)
        .set({ verifiedAt: new Date(), codeMac: null, codeExpiresAt: null, codeTries: 0, updatedAt: new Date() })
        .where(and(eq(notificationPhones.userId, userId), eq(notificationPhones.phone, phone)))
        .returning({ userId: notificationPhones.userId });
      return rows.length > 0;
    },
    async clearCode(userId: string): Promise<void> {
      await db.update(notificationPhones).set({ codeMac: null, codeExpiresAt: null, updatedAt: new Date() }).where(eq(notificationPhones.userId, userId));
    },
    /** Removes the user's number if it was last set (or verified) before `before`, not one given since. */
    async deleteSetBefore(userId: string, before: Date): Promise<boolean> {
      const rows = await db
        .delete(notificationPhones)
        .where(and(eq(notificationPhones.userId, userId), lt(notificationPhones.updatedAt, before)))
        .returning({ userId: notificationPhones.userId });
      return rows.length > 0;
    },
    async delete(userId: string): Promise<boolean> {
      const rows = await db.delete(notificationPhones).where(eq(notificationPhones.userId, userId)).returning({ userId: notificationPhones.userId });
      return rows.length > 0;
    },
  };
}
