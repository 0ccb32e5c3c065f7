import { and, asc, eq, inArray, sql } from 'drizzle-orm';
import type { Db } from '../../platform/db/database.ts';
import type { ExportArchive, ExportSource } from '../export/index.ts';
import { conversations, messageFeedback, messages } from './schema.ts';

type Conversation = typeof conversations.$inferSelect;

/**
 * Every conversation with every message it holds: all branches (each message
 * names its parent), tool calls and results, usage and cost, and the user's
 * ratings. One file per conversation, and an index.
 *
 * Messages are read for up to `batch` conversations at a time, `page` rows
 * per query in (conversation, message) order: a few queries for thousands of
 * conversations, and no more in memory than a page and the conversation
 * being written.
 */
export const chatExport = (db: Db, opts: { batch?: number; page?: number } = {}): ExportSource => ({
  name: 'chat',
  async write(userId, archive) {
    const batchSize = opts.batch ?? 200;
    const pageSize = opts.page ?? 2_000;
    const list = await db.select().from(conversations).where(eq(conversations.userId, userId)).orderBy(asc(conversations.createdAt), asc(conversations.id));
    const counts = new Map<string, number>();
    const write = (c: Conversation, rows: MessageRow[]) => {
      writeConversation(archive, c, rows);
      counts.set(c.id, rows.length);
    };
    for (let i = 0; i < list.length; i += batchSize) {
      const waiting = new Map(list.slice(i, i + batchSize).map((c) => [c.id, c]));
      const ids = [...waiting.keys()];
      let open: { c: Conversation; rows: MessageRow[] } | undefined;
      for (let after: MessageRow['m'] | undefined; ; ) {
        const rows = await db
          .select({ m: messages, rating: messageFeedback.rating, comment: messageFeedback.comment })
          .from(messages)
          .leftJoin(messageFeedback, eq(messageFeedback.messageId, messages.id))
          .where(and(inArray(messages.conversationId, ids), after && sql`(${messages.conversationId}, ${messages.id}) > (${after.conversationId}::uuid, ${after.id}::uuid)`))
          .orderBy(asc(messages.conversationId), asc(messages.id))
          .limit(pageSize);
        for (const row of rows) {
          if (open?.c.id !== row.m.conversationId) {
            if (open) write(open.c, open.rows);
            open = { c: waiting.get(row.m.conversationId)!, rows: [] };
            waiting.delete(row.m.conversationId);
          }
          open.rows.push(row);
        }
        if (rows.length < pageSize) break;
        after = rows.at(-1)!.m;
      }
      if (open) write(open.c, open.rows);
      // Those left had no message at all.
      for (const c of waiting.values()) write(c, []);
    }
    archive.json(
      'conversations.json',
      list.map((c) => ({ id: c.id, title: c.title, projectId: c.projectId, createdAt: c.createdAt, updatedAt: c.updatedAt, messages: counts.get(c.id) ?? 0 })),
    );
  },
});

interface MessageRow {
  m: typeof messages.$inferSelect;
  rating: string | null;
  comment: string | null;
}

function writeConversation(archive: ExportArchive, c: Conversation, rows: MessageRow[]) {
  const { searchVector: _c, ...conversation } = c;
  archive.json(`conversations/${c.id}.json`, {
    ...conversation,
    messages: rows.map(({ m, rating, comment }) => {
      const { searchVector: _m, text: _t, ...message } = m;
      return { ...message, feedback: rating ? { rating, comment } : null };
    }),
  });
}
