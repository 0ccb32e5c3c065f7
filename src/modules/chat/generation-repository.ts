import { and, eq, isNull } from 'drizzle-orm';
import type { Db } from '../../platform/db/database.ts';
import { conversations } from './schema.ts';

/** The few writes generation needs beyond the messages service. */
export function createGenerationRepository(db: Db) {
  return {
    /** Sets a generated title unless the conversation has one by now (the user may have named it meanwhile). */
    async setTitleIfUnset(conversationId: string, title: string): Promise<boolean> {
      const rows = await db
        .update(conversations)
        .set({ title })
        .where(and(eq(conversations.id, conversationId), isNull(conversations.title)))
        .returning({ id: conversations.id });
      return rows.length > 0;
    },
  };
}

export type GenerationRepository = ReturnType<typeof createGenerationRepository>;
