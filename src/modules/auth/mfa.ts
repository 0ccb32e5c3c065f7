import { and, eq, isNotNull } from 'drizzle-orm';
import type { Db } from '../../platform/db/database.ts';
import type { Cipher } from '../../platform/crypto/cipher.ts';
import { totpFactors } from './schema.ts';

/** TOTP second factor and backup codes. */
export function createMfa(db: Db, _cipher: Cipher) {
  return {
    async isEnabled(userId: string): Promise<boolean> {
      const [row] = await db
        .select({ userId: totpFactors.userId })
        .from(totpFactors)
        .where(and(eq(totpFactors.userId, userId), isNotNull(totpFactors.enabledAt)));
      return Boolean(row);
    },
  };
}

export type Mfa = ReturnType<typeof createMfa>;
