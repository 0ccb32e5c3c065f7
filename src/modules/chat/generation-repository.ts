import { and, eq, isNull, lt } from 'drizzle-orm';
import type { Db } from '../../platform/db/database.ts';
import { conversations, messages } from './schema.ts';

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

    /**
     * Fails answers still "streaming" though started before `before`: their
     * instance died without shutting down (a crash, a kill -9). Returns how many.
     */
    async failAbandoned(before: Date): Promise<number> {
      const rows = await db
        .update(messages)
        .set({ status: 'failed', error: { code: 'interrupted', message: 'The server answering this stopped; regenerate to try again' }, completedAt: new Date() })
        .where(and(eq(messages.status, 'streaming'), lt(messages.createdAt, before)))
        .returning({ id: messages.id });
      return rows.length;
    },
  };
}

export type GenerationRepository = ReturnType<typeof createGenerationRepository>;
