import { Conflict, InvalidCursor, NotFound, ValidationError } from '../../errors.ts';
import { inTransaction, type Db } from '../../platform/db/database.ts';
import { contentText, isBlank, MESSAGE_MAX_CHARS, MESSAGE_MAX_FILES } from './contracts.ts';
import { createMessagesRepository, type FeedbackRow, type MessageRow, type MessageView } from './messages-repository.ts';
import { createConversationsRepository, type ConversationRow } from './conversations-repository.ts';
import type { FailedAttempt, TokenCounter } from '../ai/index.ts';
import type { Citation } from '../knowledge/index.ts';
import type { ContentPart, ToolCallPart, ToolResultPart, UserPart } from './schema.ts';
import { formatMicros } from '../ai/index.ts';
import { tokensOf } from './message-tokens.ts';

export type { MessageRow, MessageView };

/** What a finished answer records: the text and how it was produced. */
export interface AssistantResult {
  text: string;
  provider: string;
  model: string;
  tokensIn: number | null;
  tokensOut: number | null;
  cachedTokens?: number | null;
  /** Micro-dollars; null when the model's price is unknown. */
  costMicros: number | null;
  latencyMs: number | null;
  ttftMs: number | null;
  finishReason: string | null;
  /** Failed attempts (fallbacks, retries) before the one that answered. */
  attempts?: FailedAttempt[];
}

/** Micro-dollars as a decimal USD string, exact (no floating point): 420 → "0.000420". */

const iso = (d: Date | null) => d?.toISOString() ?? null;

export const toPublicFeedback = (f: FeedbackRow) => ({ rating: f.rating, comment: f.comment, createdAt: f.createdAt.toISOString(), updatedAt: f.updatedAt.toISOString() });

export const toPublicMessage = (m: MessageView) => ({
  id: m.id,
  conversationId: m.conversationId,
  parentId: m.parentId,
  role: m.role,
  // A flagged answer's text is kept for admins only.
  content: m.status === 'flagged' ? [] : m.content,
  status: m.status,
  provider: m.provider,
  model: m.model,
  tokensIn: m.tokensIn,
  tokensOut: m.tokensOut,
  cachedTokens: m.cachedTokens,
  costMicros: m.costMicros,
  cost: formatMicros(m.costMicros),
  latencyMs: m.latencyMs,
  ttftMs: m.ttftMs,
  finishReason: m.finishReason,
  error: m.error,
  attempts: m.attempts,
  citations: m.citations,
  siblingIds: m.siblingIds,
  siblingIndex: m.siblingIds.indexOf(m.id),
  feedback: m.feedback && toPublicFeedback(m.feedback),
  createdAt: m.createdAt.toISOString(),
  completedAt: iso(m.completedAt),
});

function toParts(content: string | UserPart[]): { content: ContentPart[]; text: string } {
  const text = contentText(content);
  const files = typeof content === 'string' ? [] : content.filter((p) => p.type === 'file');
  if (isBlank(text) && !files.length) throw ValidationError('A message needs some text or a file', 'message_empty');
  if (text.length > MESSAGE_MAX_CHARS) throw ValidationError(`A message may hold at most ${MESSAGE_MAX_CHARS} characters`, 'message_too_long');
  if (files.length > MESSAGE_MAX_FILES) throw ValidationError(`A message may carry at most ${MESSAGE_MAX_FILES} files`, 'too_many_files');
  if (typeof content === 'string') return { content: [{ type: 'text', text: content }], text };
  return {
    content: content.map((p): ContentPart => (p.type === 'text' ? { type: 'text', text: p.text } : { type: 'file', fileId: p.fileId, name: p.name, mimeType: p.mimeType, size: p.size })),
    text,
  };
}

type Counter = Pick<TokenCounter, 'countMessage'>;

/**
 * A message's tokens as stored (see message-tokens.ts). A count that fails (its thread could not run it; the counter
 * logs why) leaves them null, as for rows written before counts were, estimated on read: an answer or a tool's
 * result is stored whatever happens to its count.
 */
const storedTokens = (m: { role: MessageRow['role']; content: ContentPart[]; text: string }, tokens: Counter) => tokensOf(m, tokens).catch(() => null);

/** A message's role, content and text with its token count, as written. */
const counted = async <R extends MessageRow['role']>(tokens: Counter, m: { role: R; content: ContentPart[]; text: string }) => ({ ...m, tokens: await storedTokens(m, tokens) });

/** What an answer's outcome writes: its text (a partial one may be empty: no content then). */
const answerOf = (text: string): { content: ContentPart[]; text: string } => ({ content: text ? [{ type: 'text', text }] : [], text });

/** The answer with the tokens it takes. */
async function answer(tokens: Counter, { content, text }: { content: ContentPart[]; text: string }) {
  return { content, text, tokens: await storedTokens({ role: 'assistant', content, text }, tokens) };
}

/**
 * A question under an answer still being written would be asked on half an answer (or one waiting for approvals),
 * as the Assistants API refuses a message while a run is active. Checked under the conversation's lock, so a
 * question posted as an answer starts sees the answer.
 */
export function assertNotStreaming(parent: MessageRow) {
  if (parent.status !== 'streaming') return;
  throw Conflict('The message above is an answer still being written: wait for it to end, or stop it, before posting under it', 'answer_in_progress');
}

/** Whether a message belongs to a tool step: the model's calls, or one of their results (not the answer that ends the turn). */
export const inToolStep = (m: Pick<MessageRow, 'role' | 'content'>) => m.role === 'tool' || m.content.some((p) => p.type === 'tool_call');

/**
 * Messages: a tree per conversation (rows linked by parentId). Reading walks one
 * branch; writing appends and moves the conversation's current leaf.
 *
 * The write helpers are for chat generation. Functions taking a userId check
 * ownership (NotFound otherwise); the others trust an id the caller already checked.
 */
export function createMessages(d: { db: Db; tokens: Counter }) {
  const repo = createMessagesRepository(d.db);
  const conversations = createConversationsRepository(d.db);

  async function owned(userId: string, conversationId: string): Promise<ConversationRow> {
    const conversation = await conversations.get(userId, conversationId);
    if (!conversation) throw NotFound('Conversation', 'conversation_not_found');
    return conversation;
  }

  /** Locks the conversation for the rest of the transaction, so appends and leaf moves take turns. */
  async function locked(conversationId: string, tx: Db, userId?: string): Promise<ConversationRow> {
    const conversation = await conversations.lock(conversationId, tx);
    if (!conversation || (userId !== undefined && conversation.userId !== userId)) throw NotFound('Conversation', 'conversation_not_found');
    return conversation;
  }

  async function messageIn(conversationId: string, messageId: string, tx?: Db): Promise<MessageRow> {
    const message = await repo.get(conversationId, messageId, tx);
    if (!message) throw NotFound('Message', 'message_not_found');
    return message;
  }

  async function finish(messageId: string, values: Parameters<typeof repo.finishStreaming>[1]): Promise<MessageRow> {
    const row = await repo.finishStreaming(messageId, { ...values, completedAt: new Date() });
    if (row) return row;
    if (!(await repo.byId(messageId))) throw NotFound('Message', 'message_not_found');
    throw Conflict('The message is no longer streaming', 'message_not_streaming');
  }

  /**
   * The branch ending at `leafId` (default: the current leaf), first message first. With `page.limit`,
   * only its newest messages (before `page.cursor`, a previous page's `nextCursor`), read up from the leaf.
   */
  async function branch(userId: string, conversationId: string, leafId?: string, page: { limit?: number; cursor?: string } = {}) {
    const conversation = await owned(userId, conversationId);
    const leaf = leafId ?? conversation.currentLeafId;
    const from = page.cursor ?? leaf;
    const data = from ? await repo.branchView(conversationId, from, page.limit) : [];
    // As every list's cursor: one this list never made (a message of another conversation, or none) is the caller's mistake.
    if (page.cursor && !data.length) throw InvalidCursor();
    if (leafId && !data.length) throw NotFound('Message', 'message_not_found');
    if (!page.limit) return { conversationId, leafId: leaf, data };
    const first = data[0];
    return { conversationId, leafId: leaf, data, nextCursor: data.length === page.limit && first?.parentId ? first.parentId : null };
  }

  return {
    /**
     * Fails answers still "streaming" though started before `before`: their
     * instance died without shutting down (a crash, a kill -9). Returns how many.
     */
    failAbandoned: (before: Date, approvalsBefore: Date) => repo.failAbandoned(before, approvalsBefore),

    /**
     * Stores a tool step of the answer `finalId`: the model's message (its text
     * and calls, with that call's metrics) and a `tool` message per call, placed
     * before the answer in its branch. Conflict when the answer no longer streams.
     */
    async appendToolStep(conversationId: string, finalId: string, step: { text: string; calls: ToolCallPart[]; results: ToolResultPart[]; metrics: Omit<AssistantResult, 'text'> }): Promise<MessageRow[]> {
      // Counted before the conversation is locked: a long result takes a while, on a thread.
      const assistant = await counted(d.tokens, { role: 'assistant', content: [...(step.text ? [{ type: 'text' as const, text: step.text }] : []), ...step.calls], text: step.text });
      const tools = await Promise.all(step.results.map((r) => counted(d.tokens, { role: 'tool', content: [r], text: r.result ?? '' })));
      return inTransaction(d.db, async (tx) => {
        const conversation = await locked(conversationId, tx);
        const { attempts, cachedTokens, ...metrics } = step.metrics;
        const now = new Date();
        const rows = await repo.insertToolStep(
          conversationId,
          finalId,
          {
            assistant: {
              ...metrics,
              cachedTokens: cachedTokens ?? null,
              attempts: attempts ?? [],
              conversationId,
              userId: conversation.userId,
              ...assistant,
              status: 'complete',
              completedAt: now,
            },
            tools: tools.map((tool) => ({
              conversationId,
              userId: conversation.userId,
              ...tool,
              status: 'complete' as const,
              completedAt: now,
            })),
          },
          tx,
        );
        if (!rows) throw Conflict('The message is no longer streaming', 'message_not_streaming');
        return rows;
      });
    },

    /** The `tool` messages just before a streaming answer: the calls of its last step, oldest first. */
    async lastToolStep(conversationId: string, answer: MessageRow): Promise<Array<{ id: string; part: ToolResultPart }>> {
      if (!answer.parentId) return [];
      // Back to the question the step answers, no further.
      const branch = await repo.recent(conversationId, answer.parentId, 0, false);
      const step: Array<{ id: string; part: ToolResultPart }> = [];
      for (let i = branch.length - 1; i >= 0 && branch[i]!.role === 'tool'; i--) {
        const part = branch[i]!.content.find((p) => p.type === 'tool_result');
        if (part) step.unshift({ id: branch[i]!.id, part });
      }
      return step;
    },

    /** Replaces a tool message's call; when `from` is given, only if the call is still in that state (false otherwise). */
    setToolResult: async (id: string, part: ToolResultPart, from?: ToolResultPart['status']) =>
      repo.setToolResult(id, part, await storedTokens({ role: 'tool', content: [part], text: part.result ?? '' }, d.tokens), from),

    /** Pauses a streaming answer for approvals (true), or claims it back to run once they are all in (false: only one claimer wins). */
    setAwaiting: (id: string, awaiting: boolean) => repo.setAwaiting(id, awaiting),

    /** The branch ending at `leafId` (default: the current leaf), first message first. */
    branch,

    /** The user's answers still being written in a conversation (404 for another user's conversation). */
    async streamingIn(userId: string, conversationId: string): Promise<string[]> {
      await owned(userId, conversationId);
      return repo.streaming(conversationId);
    },

    async get(userId: string, conversationId: string, messageId: string): Promise<MessageView> {
      await owned(userId, conversationId);
      const message = await repo.view(conversationId, messageId);
      if (!message) throw NotFound('Message', 'message_not_found');
      return message;
    },

    /** Shows the branch through `messageId`: the current leaf becomes the newest leaf below it. */
    async selectBranch(userId: string, conversationId: string, messageId: string) {
      await inTransaction(d.db, async (tx) => {
        await locked(conversationId, tx, userId);
        await messageIn(conversationId, messageId, tx);
        await conversations.setCurrentLeaf(conversationId, await repo.newestLeafUnder(conversationId, messageId, tx), tx, false);
      });
      return branch(userId, conversationId);
    },

    /**
     * Appends the user's message under `parentId` (default: the current leaf) and
     * makes it the current leaf. Editing a message is appending under the edited
     * message's parent (null for the first message): a new branch.
     * Throws NotFound (conversation or parent), ValidationError (message_empty, message_too_long).
     */
    async appendUserMessage(userId: string, conversationId: string, input: { parentId?: string | null; content: string | UserPart[] }): Promise<MessageRow> {
      // Counted before the conversation is locked: a long question takes a while, on a thread.
      const message = await counted(d.tokens, { role: 'user', ...toParts(input.content) });
      return inTransaction(d.db, async (tx) => {
        const conversation = await locked(conversationId, tx, userId);
        const parentId = input.parentId === undefined ? conversation.currentLeafId : input.parentId;
        if (parentId) assertNotStreaming(await messageIn(conversationId, parentId, tx));
        const row = await repo.insert({ conversationId, userId, parentId, ...message, status: 'complete', completedAt: new Date() }, tx);
        await conversations.setCurrentLeaf(conversationId, row.id, tx);
        return row;
      });
    },

    /**
     * An empty assistant message (status 'streaming') answering `parentId`, made the
     * current leaf. Regenerating is another placeholder under the same parent.
     */
    async createAssistantPlaceholder(conversationId: string, input: { parentId: string; provider?: string | null; model?: string | null; citations?: Citation[] }): Promise<MessageRow> {
      return inTransaction(d.db, async (tx) => {
        const conversation = await locked(conversationId, tx);
        await messageIn(conversationId, input.parentId, tx);
        const message = await repo.insert(
          {
            conversationId,
            userId: conversation.userId,
            parentId: input.parentId,
            role: 'assistant',
            content: [],
            text: '',
            tokens: 0,
            status: 'streaming',
            provider: input.provider ?? null,
            model: input.model ?? null,
            citations: input.citations ?? [],
          },
          tx,
        );
        await conversations.setCurrentLeaf(conversationId, message.id, tx);
        return message;
      });
    },

    /** Records the finished answer. Conflict (`message_not_streaming`) when it already finished, failed or was cancelled. */
    async completeAssistant(messageId: string, r: AssistantResult): Promise<MessageRow> {
      const { text, attempts, cachedTokens, ...metrics } = r;
      return finish(messageId, {
        ...metrics,
        cachedTokens: cachedTokens ?? null,
        ...(await answer(d.tokens, { content: [{ type: 'text', text }], text })),
        status: 'complete',
        ...(attempts ? { attempts } : {}),
      });
    },

    /** Marks the answer failed, keeping whatever text arrived before the failure. */
    async failAssistant(messageId: string, partialText: string, error: { code: string; message: string }, attempts: FailedAttempt[] = []): Promise<MessageRow> {
      return finish(messageId, { ...(await answer(d.tokens, answerOf(partialText))), status: 'failed', error, attempts });
    },

    /** Marks the answer stopped by the safety checks: its text so far is kept in the database for admins and shown to nobody else. */
    flagAssistant(messageId: string, partialText: string, error: { code: string; message: string }, fields: Partial<Omit<AssistantResult, 'text'>> = {}): Promise<MessageRow> {
      // Never shown to the model again: it takes no tokens, and is not counted.
      return finish(messageId, { ...fields, ...answerOf(partialText), tokens: 0, status: 'flagged', error, finishReason: 'content_flagged' });
    },

    /** Marks the answer cancelled (the user stopped it), keeping the text so far. */
    async cancelAssistant(messageId: string, partialText: string, fields: Partial<Omit<AssistantResult, 'text'>> = {}): Promise<MessageRow> {
      return finish(messageId, { ...fields, ...(await answer(d.tokens, answerOf(partialText))), status: 'cancelled', finishReason: fields.finishReason ?? 'cancelled' });
    },

    /** Points the conversation at `messageId` as its current leaf (no descent). NotFound when the message is not in it. */
    async setCurrentLeaf(conversationId: string, messageId: string): Promise<void> {
      await inTransaction(d.db, async (tx) => {
        await locked(conversationId, tx);
        await messageIn(conversationId, messageId, tx);
        await conversations.setCurrentLeaf(conversationId, messageId, tx, false);
      });
    },

    /**
     * The messages of the branch ending at `leafId` (default: the current leaf),
     * first message first: the history to send to the model. Empty for an empty conversation.
     * With `within`, only the newest that can reach the model: back from the leaf
     * until their stored tokens pass `within.tokens`, the latest turn always whole
     * (`asked`: a new question, not stored yet, follows the leaf). That reads as
     * much as the window holds, not the whole branch, and keeps every message the
     * context builder would keep of the whole one.
     */
    async historyFor(conversationId: string, leafId?: string | null, within?: { tokens: number; asked?: boolean }): Promise<MessageRow[]> {
      let leaf = leafId;
      if (leaf === undefined) {
        const conversation = await conversations.byId(conversationId);
        if (!conversation) throw NotFound('Conversation', 'conversation_not_found');
        leaf = conversation.currentLeafId;
      }
      if (!leaf) return [];
      return within ? repo.recent(conversationId, leaf, Math.floor(within.tokens), within.asked ?? false) : repo.branch(conversationId, leaf);
    },

    /** Marks the user's messages that showed this file: it was deleted (the name stays, for the record). */
    markFileDeleted: (userId: string, fileId: string) => repo.markFileDeleted(userId, fileId),

    /** Thumbs up or down on an assistant message; replaces earlier feedback. */
    async setFeedback(userId: string, conversationId: string, messageId: string, input: { rating: 'up' | 'down'; comment?: string | null }): Promise<FeedbackRow> {
      await owned(userId, conversationId);
      const message = await messageIn(conversationId, messageId);
      if (message.role !== 'assistant') throw ValidationError('Only assistant messages take feedback', 'feedback_not_allowed');
      return repo.upsertFeedback({ messageId, userId, rating: input.rating, comment: input.comment || null });
    },

    async deleteFeedback(userId: string, conversationId: string, messageId: string): Promise<void> {
      await owned(userId, conversationId);
      await messageIn(conversationId, messageId);
      await repo.deleteFeedback(messageId);
    },
  };
}

export type Messages = ReturnType<typeof createMessages>;
