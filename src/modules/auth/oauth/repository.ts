import { and, eq, lt } from 'drizzle-orm';
import type { Db } from '../../../platform/db/database.ts';
import { oauthAccounts, oauthFlows } from '../schema.ts';

export type OAuthFlow = typeof oauthFlows.$inferSelect;
export type OAuthAccount = typeof oauthAccounts.$inferSelect;

export function createOAuthRepository(db: Db) {
  return {
    async saveFlow(flow: typeof oauthFlows.$inferInsert): Promise<void> {
      await db.insert(oauthFlows).values(flow);
    },

    /** Deletes and returns the flow in one statement: a state works once, even under concurrent callbacks. */
    async takeFlow(state: string): Promise<OAuthFlow | undefined> {
      const [row] = await db.delete(oauthFlows).where(eq(oauthFlows.state, state)).returning();
      return row;
    },

    /** Flows abandoned at the provider never reach the callback; drop them once expired. */
    async pruneFlows(now = new Date()): Promise<void> {
      await db.delete(oauthFlows).where(lt(oauthFlows.expiresAt, now));
    },

    /** Removes every identity linked to an account; returns the providers they were of. */
    async unlinkAll(userId: string, tx: Db = db): Promise<string[]> {
      return (await tx.delete(oauthAccounts).where(eq(oauthAccounts.userId, userId)).returning({ provider: oauthAccounts.provider })).map((r) => r.provider);
    },

    async account(provider: string, subject: string, tx: Db = db): Promise<OAuthAccount | undefined> {
      const [row] = await tx.select().from(oauthAccounts).where(and(eq(oauthAccounts.provider, provider), eq(oauthAccounts.subject, subject)));
      return row;
    },

    /** Links an identity to a user; false if that identity was linked meanwhile. */
    async link(values: { userId: string; provider: string; subject: string; email: string | null }, tx: Db = db): Promise<boolean> {
      const rows = await tx.insert(oauthAccounts).values(values).onConflictDoNothing().returning({ id: oauthAccounts.id });
      return rows.length > 0;
    },
  };
}
