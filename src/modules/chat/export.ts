import { and, asc, eq, inArray, sql } from 'drizzle-orm';
import type { Db } from '../../platform/db/database.ts';
import { inBatches, type ExportSource } from '../export/index.ts';
import { conversations, conversationShares, messageFeedback, messages, type ConversationShareRow } from './schema.ts';

type Conversation = typeof conversations.$inferSelect;

/**
 * Every conversation with every message it holds: all branches (each message
 * names its parent), tool calls and results, usage and cost, and the user's
 * ratings, and its share links (never their tokens, of which only a hash is kept). One file per conversation, and an index.
 *
 * Each conversation's file is made when the archive reaches it: messages are
 * read for up to `batch` conversations at a time, `page` rows per query in
 * (conversation, message) order, as the zip streams. A few queries for
 * thousands of conversations, and no more in memory than one batch, however
 * long the user's history.
 */
export const chatExport = (db: Db, opts: { batch?: number; page?: number } = {}): ExportSource => ({
  name: 'chat',
  async write(userId, archive) {
    const batchSize = opts.batch ?? 200;
    const pageSize = opts.page ?? 2_000;
    const list = await db.select().from(conversations).where(eq(conversations.userId, userId)).orderBy(asc(conversations.createdAt), asc(conversations.id));
    const counts = new Map<string, number>();
    // The archive reaches conversations in order, so each batch is read once.
    const rowsOf = inBatches(list, batchSize, async (batch) => {
      const ids = batch.map((c) => c.id);
      const byConversation = new Map<string, MessageRow[]>();
      const links = await db
        .select()
        .from(conversationShares)
        .where(inArray(conversationShares.conversationId, ids))
        .orderBy(asc(conversationShares.conversationId), asc(conversationShares.id));
      const sharesOf = Map.groupBy(links, (l) => l.conversationId);
      for (let after: MessageRow['m'] | undefined; ; ) {
        const rows = await db
          .select({ m: messages, rating: messageFeedback.rating, comment: messageFeedback.comment })
          .from(messages)
          .leftJoin(messageFeedback, eq(messageFeedback.messageId, messages.id))
          .where(and(inArray(messages.conversationId, ids), after && sql`(${messages.conversationId}, ${messages.id}) > (${after.conversationId}::uuid, ${after.id}::uuid)`))
          .orderBy(asc(messages.conversationId), asc(messages.id))
          .limit(pageSize);
        for (const row of rows) {
          const of = byConversation.get(row.m.conversationId);
          if (of) of.push(row);
          else byConversation.set(row.m.conversationId, [row]);
        }
        if (rows.length < pageSize) return { messages: byConversation, shares: sharesOf };
        after = rows.at(-1)!.m;
      }
    });
    list.forEach((c, index) =>
      archive.later(`conversations/${c.id}.json`, async () => {
        const of = await rowsOf(index);
        const rows = of.messages.get(c.id) ?? [];
        counts.set(c.id, rows.length);
        return conversationJson(c, rows, of.shares.get(c.id) ?? []);
      }),
    );
    // After every conversation's file: their message counts are known by then.
    archive.later('conversations.json', async () =>
      list.map((c) => ({ id: c.id, title: c.title, projectId: c.projectId, createdAt: c.createdAt, updatedAt: c.updatedAt, messages: counts.get(c.id) ?? 0 })),
    );
  },
});

interface MessageRow {
  m: typeof messages.$inferSelect;
  rating: string | null;
  comment: string | null;
}

function conversationJson(c: Conversation, rows: MessageRow[], links: ConversationShareRow[]) {
  const { searchVector: _c, ...conversation } = c;
  return {
    ...conversation,
    messages: rows.map(({ m, rating, comment }) => {
      const { searchVector: _m, text: _t, ...message } = m;
      return { ...message, feedback: rating ? { rating, comment } : null };
    }),
    shares: links.map(({ id, last4, leafId, createdAt, expiresAt, revokedAt }) => ({ id, last4, leafId, createdAt, expiresAt, revokedAt })),
  };
}
