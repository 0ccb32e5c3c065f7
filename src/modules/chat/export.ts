import { asc, eq } from 'drizzle-orm';
import type { Db } from '../../platform/db/database.ts';
import type { ExportSource } from '../export/index.ts';
import { conversations, messageFeedback, messages } from './schema.ts';

/**
 * Every conversation with every message it holds: all branches (each message
 * names its parent), tool calls and results, usage and cost, and the user's
 * ratings. One file per conversation, and an index.
 */
export const chatExport = (db: Db): ExportSource => ({
  name: 'chat',
  async write(userId, archive) {
    const list = await db.select().from(conversations).where(eq(conversations.userId, userId)).orderBy(asc(conversations.createdAt), asc(conversations.id));
    const index = [];
    for (const c of list) {
      const rows = await db
        .select({ m: messages, rating: messageFeedback.rating, comment: messageFeedback.comment })
        .from(messages)
        .leftJoin(messageFeedback, eq(messageFeedback.messageId, messages.id))
        .where(eq(messages.conversationId, c.id))
        .orderBy(asc(messages.id));
      const { searchVector: _c, ...conversation } = c;
      archive.json(`conversations/${c.id}.json`, {
        ...conversation,
        messages: rows.map(({ m, rating, comment }) => {
          const { searchVector: _m, text: _t, ...message } = m;
          return { ...message, feedback: rating ? { rating, comment } : null };
        }),
      });
      index.push({ id: c.id, title: c.title, projectId: c.projectId, createdAt: c.createdAt, updatedAt: c.updatedAt, messages: rows.length });
    }
    archive.json('conversations.json', index);
  },
});
