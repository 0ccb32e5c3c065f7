import { and, eq, getTableColumns, lt, sql, type SQL } from 'drizzle-orm';
import { alias } from 'drizzle-orm/pg-core';
import { uuidv7 } from 'uuidv7';
import type { Db } from '../../platform/db/database.ts';
import { messageFeedback, messages, type ToolResultPart } from './schema.ts';

// search_vector is for search only; everything else reads these columns.
const { searchVector: _searchVector, ...columns } = getTableColumns(messages);

export type MessageRow = Omit<typeof messages.$inferSelect, 'searchVector'>;
export type FeedbackRow = typeof messageFeedback.$inferSelect;
export type MessageView = MessageRow & { siblingIds: string[]; feedback: FeedbackRow | null };

/** The finish reason of an answer still streaming but paused until the user decides on its tool calls. */
export const AWAITING_APPROVAL = 'awaiting_approval';

/** Guards against a corrupt parent chain (a cycle) walking forever. */
const MAX_DEPTH = 100_000;

/** Messages copied per statement when a branch is copied (copyBranch). */
const COPY_BATCH = 5_000;

/** A list of ids (nulls allowed) as one uuid[] parameter. */
const uuidArray = (ids: Array<string | null>) => sql`${`{${ids.map((id) => id ?? 'NULL').join(',')}}`}::uuid[]`;

const sibling = alias(messages, 'sibling');

/**
 * The message and its alternatives: every message of the conversation with the same parent, oldest first.
 * Two cases rather than `is not distinct from`, which no index serves: a parent's children by
 * messages_parent_idx, the conversation's first messages by messages_roots_idx.
 */
const siblingIds = sql<string[]>`(case when ${messages.parentId} is null then (
  select coalesce(json_agg(${sibling.id} order by ${sibling.id}), '[]'::json) from ${messages} as sibling
  where ${sibling.conversationId} = ${messages.conversationId} and ${sibling.parentId} is null
) else (
  select coalesce(json_agg(${sibling.id} order by ${sibling.id}), '[]'::json) from ${messages} as sibling
  where ${sibling.parentId} = ${messages.parentId} and ${sibling.conversationId} = ${messages.conversationId}
) end)`;

/** A row's stored tokens; an estimate for rows stored before they were counted (at least the 3 tokens of a message's framing). */
const costOf = (m: SQL) => sql`coalesce(${m}.tokens, ceil(octet_length(${m}.text) / 4.0)::int + 3)`;

const view = { message: columns, siblingIds, feedback: getTableColumns(messageFeedback) };

/** The ids of a branch with their distance from its leaf: one recursive query up the parent links, at most `limit` of them. */
const branchOf = (conversationId: string, leafId: string, limit = MAX_DEPTH) => sql`(
  with recursive branch(id, parent_id, depth) as (
    select id, parent_id, 0 from ${messages} where id = ${leafId} and conversation_id = ${conversationId}
    union all
    select m.id, m.parent_id, b.depth + 1 from ${messages} m join branch b on m.id = b.parent_id
    where m.conversation_id = ${conversationId} and b.depth < ${Math.min(limit, MAX_DEPTH) - 1}
  )
  select id, depth from branch
) as branch`;

/**
 * The newest part of a branch a turn can use: walks up from `leafId` one
 * parent at a time (a primary-key lookup per step), adding each message's
 * stored tokens, and stops at the first message that takes the sum past
 * `budget` (kept: it marks where the window ends) once the latest turn is
 * whole (back to its user message; `asked`: a new question follows the leaf,
 * so it is whole already). Rows written before token counts were stored are
 * estimated at 4 bytes a token. Every message costs its framing at least, so
 * the walk is bounded by the budget whatever the branch's length.
 */
const recentOf = (conversationId: string, leafId: string, budget: number, asked: boolean) => sql`(
  with recursive walk(id, parent_id, depth, spent, asked) as (
    select id, parent_id, 0, ${costOf(sql`m`)}, role = 'user' or ${asked}
    from ${messages} m where id = ${leafId} and conversation_id = ${conversationId}
    union all
    select m.id, m.parent_id, w.depth + 1, w.spent + ${costOf(sql`m`)}, w.asked or m.role = 'user'
    from walk w join ${messages} m on m.id = w.parent_id
    where m.conversation_id = ${conversationId} and w.depth < ${MAX_DEPTH} and (w.spent <= ${budget} or not w.asked)
  )
  select id, depth from walk
) as branch`;

type ViewRow = { message: MessageRow; siblingIds: string[]; feedback: FeedbackRow | null };
const toView = (r: ViewRow): MessageView => ({ ...r.message, siblingIds: r.siblingIds, feedback: r.feedback });

export function createMessagesRepository(db: Db) {
  const inConversation = (conversationId: string, id: string) => and(eq(messages.id, id), eq(messages.conversationId, conversationId));

  return {
    /** The answers of a conversation still being written (or waiting for approvals). */
    async streaming(conversationId: string): Promise<string[]> {
      const rows = await db.select({ id: messages.id }).from(messages).where(and(eq(messages.conversationId, conversationId), eq(messages.status, 'streaming')));
      return rows.map((r) => r.id);
    },

    /**
     * Fails answers still "streaming" though started before `before`: their
     * instance died without shutting down (a crash, a kill -9). Returns how many.
     */
    async failAbandoned(before: Date, approvalsBefore: Date): Promise<number> {
      const interrupted = await db
        .update(messages)
        .set({ status: 'failed', error: { code: 'interrupted', message: 'The server answering this stopped; regenerate to try again' }, completedAt: new Date() })
        .where(and(eq(messages.status, 'streaming'), lt(messages.createdAt, before), sql`${messages.finishReason} is distinct from ${AWAITING_APPROVAL}`))
        .returning({ id: messages.id });
      const expired = await db
        .update(messages)
        .set({ status: 'failed', error: { code: 'approval_expired', message: 'No one approved or denied the tool calls in time; regenerate to try again' }, completedAt: new Date() })
        .where(and(eq(messages.status, 'streaming'), lt(messages.createdAt, approvalsBefore), eq(messages.finishReason, AWAITING_APPROVAL)))
        .returning({ id: messages.id });
      return interrupted.length + expired.length;
    },

    /**
     * Stores one tool step of the answer `finalId` in a transaction: the model's
     * message with its calls, then a `tool` message per call, each below the
     * last, and moves the answer below them; the branch reads user → calls →
     * results → answer. Undefined when the answer is no longer streaming.
     */
    async insertToolStep(conversationId: string, finalId: string, step: { assistant: typeof messages.$inferInsert; tools: Array<typeof messages.$inferInsert> }, tx: Db): Promise<MessageRow[] | undefined> {
      const [final] = await tx.select(columns).from(messages).where(and(inConversation(conversationId, finalId), eq(messages.status, 'streaming'))).for('update');
      if (!final) return undefined;
      const rows: MessageRow[] = [];
      let parentId = final.parentId;
      for (const values of [step.assistant, ...step.tools]) {
        const [row] = await tx.insert(messages).values({ ...values, parentId }).returning(columns);
        rows.push(row!);
        parentId = row!.id;
      }
      await tx.update(messages).set({ parentId }).where(eq(messages.id, finalId));
      return rows;
    },

    /** Replaces a tool message's result (a call run after approval); only while it is still `from` when given. */
    async setToolResult(id: string, part: ToolResultPart, tokens: number | null, from?: ToolResultPart['status']): Promise<boolean> {
      const rows = await db
        .update(messages)
        .set({ content: [part], text: part.result ?? '', tokens })
        .where(and(eq(messages.id, id), eq(messages.role, 'tool'), from ? sql`${messages.content}->0->>'status' = ${from}` : undefined))
        .returning({ id: messages.id });
      return rows.length > 0;
    },

    /** Marks a streaming answer as waiting for approvals, or takes it back to run (once: false when someone else did). */
    async setAwaiting(id: string, awaiting: boolean): Promise<boolean> {
      const rows = await db
        .update(messages)
        .set({ finishReason: awaiting ? AWAITING_APPROVAL : null })
        .where(and(eq(messages.id, id), eq(messages.status, 'streaming'), awaiting ? sql`${messages.finishReason} is null` : eq(messages.finishReason, AWAITING_APPROVAL)))
        .returning({ id: messages.id });
      return rows.length > 0;
    },
    /** Sets `deleted: true` on the file parts naming `fileId` in the user's messages; returns how many messages changed. */
    async markFileDeleted(userId: string, fileId: string): Promise<number> {
      const names = JSON.stringify([{ type: 'file', fileId }]);
      const rows = await db
        .update(messages)
        .set({
          content: sql`(
            select jsonb_agg(case when part->>'type' = 'file' and part->>'fileId' = ${fileId} then part || '{"deleted":true}'::jsonb else part end order by position)
            from jsonb_array_elements(${messages.content}) with ordinality as parts(part, position)
          )`,
        })
        // The first containment is the partial index's own predicate (messages_user_files_idx), so the planner uses it.
        .where(and(eq(messages.userId, userId), sql`${messages.content} @> '[{"type":"file"}]'::jsonb`, sql`${messages.content} @> ${names}::jsonb`))
        .returning({ id: messages.id });
      return rows.length;
    },
    async get(conversationId: string, id: string, tx: Db = db): Promise<MessageRow | undefined> {
      const [row] = await tx.select(columns).from(messages).where(inConversation(conversationId, id));
      return row;
    },

    async byId(id: string, tx: Db = db): Promise<MessageRow | undefined> {
      const [row] = await tx.select(columns).from(messages).where(eq(messages.id, id));
      return row;
    },

    /** One message with its siblings and feedback. */
    async view(conversationId: string, id: string): Promise<MessageView | undefined> {
      const [row] = await db
        .select(view)
        .from(messages)
        .leftJoin(messageFeedback, eq(messageFeedback.messageId, messages.id))
        .where(inConversation(conversationId, id));
      return row && toView(row);
    },

    /** The branch ending at `leafId` (its last `limit` messages), first message first, with siblings and feedback; empty when the leaf is not in the conversation. */
    async branchView(conversationId: string, leafId: string, limit?: number): Promise<MessageView[]> {
      const rows = await db
        .select(view)
        .from(messages)
        .innerJoin(branchOf(conversationId, leafId, limit), sql`branch.id = ${messages.id}`)
        .leftJoin(messageFeedback, eq(messageFeedback.messageId, messages.id))
        .orderBy(sql`branch.depth desc`);
      return rows.map(toView);
    },

    /** The bare rows of the branch ending at `leafId`, first message first. */
    branch(conversationId: string, leafId: string): Promise<MessageRow[]> {
      return db
        .select(columns)
        .from(messages)
        .innerJoin(branchOf(conversationId, leafId), sql`branch.id = ${messages.id}`)
        .orderBy(sql`branch.depth desc`);
    },

    /**
     * Copies the branch ending at `leafId` into conversation `to` as one chain (the same roles, content, counts and
     * outcomes; new ids, made in order, so they sort as the originals did), without passing the rows through this
     * process: their ids are read, then one INSERT … SELECT per batch maps each to its copy. Returns the new leaf's
     * id, or null for an empty branch. Feedback stays with the originals.
     */
    async copyBranch(from: string, leafId: string, to: string, tx: Db): Promise<string | null> {
      const rows = await tx.select({ id: messages.id }).from(messages).innerJoin(branchOf(from, leafId), sql`branch.id = ${messages.id}`).orderBy(sql`branch.depth desc`);
      const olds = rows.map((r) => r.id);
      const news = olds.map(() => uuidv7());
      for (let at = 0; at < olds.length; at += COPY_BATCH) {
        const end = Math.min(olds.length, at + COPY_BATCH);
        const parents = news.slice(at, end).map((_, i) => (at + i === 0 ? null : news[at + i - 1]!));
        await tx.execute(sql`
          insert into ${messages} (id, conversation_id, user_id, parent_id, role, content, text, tokens, status, provider, model, tokens_in, tokens_out,
            cached_tokens, cost_micros, latency_ms, ttft_ms, finish_reason, error, attempts, citations, created_at, completed_at)
          select copy.id, ${to}, m.user_id, copy.parent_id, m.role, m.content, m.text, m.tokens, m.status, m.provider, m.model, m.tokens_in, m.tokens_out,
            m.cached_tokens, m.cost_micros, m.latency_ms, m.ttft_ms, m.finish_reason, m.error, m.attempts, m.citations, m.created_at, m.completed_at
          from unnest(${uuidArray(olds.slice(at, end))}, ${uuidArray(news.slice(at, end))}, ${uuidArray(parents)}) as copy(original, id, parent_id)
          join ${messages} m on m.id = copy.original and m.conversation_id = ${from}`);
      }
      return news.at(-1) ?? null;
    },

    /**
     * The newest messages of the branch ending at `leafId`, first message first:
     * back from the leaf as far as `budget` tokens reach (see recentOf), however long the branch.
     */
    recent(conversationId: string, leafId: string, budget: number, asked: boolean): Promise<MessageRow[]> {
      return db
        .select(columns)
        .from(messages)
        .innerJoin(recentOf(conversationId, leafId, budget, asked), sql`branch.id = ${messages.id}`)
        .orderBy(sql`branch.depth desc`);
    },

    /** The leaf reached from `id` by always following the newest child (the branch a UI shows after switching to `id`). */
    async newestLeafUnder(conversationId: string, id: string, tx: Db = db): Promise<string> {
      const [row] = await tx
        .select({ id: sql<string>`walk.id` })
        .from(
          sql`(
            with recursive walk(id, depth) as (
              select ${id}::uuid, 0
              union all
              select child.id, walk.depth + 1 from walk cross join lateral (
                select m.id from ${messages} m where m.parent_id = walk.id and m.conversation_id = ${conversationId} order by m.id desc limit 1
              ) child
              where walk.depth < ${MAX_DEPTH}
            )
            select id, depth from walk
          ) as walk`,
        )
        .orderBy(sql`walk.depth desc`)
        .limit(1);
      return row?.id ?? id;
    },

    async insert(values: typeof messages.$inferInsert, tx: Db = db): Promise<MessageRow> {
      const [row] = await tx.insert(messages).values(values).returning(columns);
      return row!;
    },

    /** Updates a message only while it is still streaming; undefined when it is not (finished, or never existed). */
    async finishStreaming(id: string, values: Partial<typeof messages.$inferInsert>): Promise<MessageRow | undefined> {
      const [row] = await db
        .update(messages)
        .set(values)
        .where(and(eq(messages.id, id), eq(messages.status, 'streaming')))
        .returning(columns);
      return row;
    },

    async upsertFeedback(values: { messageId: string; userId: string; rating: 'up' | 'down'; comment: string | null }): Promise<FeedbackRow> {
      const [row] = await db
        .insert(messageFeedback)
        .values(values)
        .onConflictDoUpdate({ target: messageFeedback.messageId, set: { rating: values.rating, comment: values.comment, updatedAt: new Date() } })
        .returning();
      return row!;
    },

    async deleteFeedback(messageId: string): Promise<void> {
      await db.delete(messageFeedback).where(eq(messageFeedback.messageId, messageId));
    },
  };
}

export type MessagesRepository = ReturnType<typeof createMessagesRepository>;
