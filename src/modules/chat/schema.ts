import { sql, type SQL } from 'drizzle-orm';
import { bigint, boolean, customType, index, integer, jsonb, pgTable, text, uniqueIndex, uuid } from 'drizzle-orm/pg-core';
import { createdAt, id, time } from '../../platform/db/columns.ts';
import type { FailedAttempt } from '../ai/index.ts';
import type { Citation } from '../knowledge/index.ts';
import { projects } from '../projects/index.ts';
import { users } from '../users/index.ts';

const tsvector = customType<{ data: string }>({ dataType: () => 'tsvector' });

export const conversations = pgTable(
  'conversations',
  {
    id: id(),
    userId: uuid('user_id').notNull().references(() => users.id, { onDelete: 'cascade' }),
    projectId: uuid('project_id').references(() => projects.id, { onDelete: 'set null' }),
    title: text('title'),
    /** `provider:model`; null means the project's, then the server's default. */
    model: text('model'),
    pinned: boolean('pinned').notNull().default(false),
    archived: boolean('archived').notNull().default(false),
    /** The last message of the branch the user is looking at. */
    currentLeafId: uuid('current_leaf_id'),
    createdAt: createdAt(),
    updatedAt: time('updated_at').notNull().defaultNow(),
    searchVector: tsvector('search_vector').generatedAlwaysAs((): SQL => sql`to_tsvector('english', coalesce(${conversations.title}, ''))`),
  },
  (t) => [
    index('conversations_user_idx').on(t.userId, t.updatedAt, t.id),
    // The list's order (pinned first, then most recently updated) within a user's archived or not: one backward scan of a page.
    index('conversations_list_idx').on(t.userId, t.archived, t.pinned, t.updatedAt, t.id),
    index('conversations_project_idx').on(t.projectId),
    // Search reads one user's matches (btree_gin lets a GIN index lead with the user): not every user's, then filtered.
    index('conversations_user_search_idx').using('gin', t.userId, t.searchVector),
  ],
);

/**
 * A file shown with a message, as stored: enough for a client to render it
 * without another request. `deleted` once the file is deleted (the
 * `file.deleted` event marks every message that showed it).
 */
export type FilePart = { type: 'file'; fileId: string; name: string; mimeType: string; size: number; deleted?: boolean };

/** A call the model made, on the assistant message that made it. */
export type ToolCallPart = { type: 'tool_call'; id: string; name: string; arguments: string };

/** Where a call stands: run (`ok`, `error`), waiting for the user, or answered without running. */
export type ToolCallStatus = 'ok' | 'error' | 'pending_approval' | 'approved' | 'denied' | 'cancelled';

/** A call and how it ended, the one part of a `tool` message: what the model was given back. */
export type ToolResultPart = {
  type: 'tool_result';
  callId: string;
  name: string;
  arguments: string;
  status: ToolCallStatus;
  /** What the model was given: the result as JSON text, or the error. */
  result: string | null;
  error: { code: string; message: string } | null;
  durationMs: number | null;
};

export type ContentPart = { type: 'text'; text: string } | FilePart | ToolCallPart | ToolResultPart;

/** What a user's message is made of. */
export type UserPart = { type: 'text'; text: string } | FilePart;

/** A part as a client sends it: text, or one of its files by id. */
export type ContentInput = { type: 'text'; text: string } | { type: 'file'; fileId: string };


/** One row per message; a conversation is a tree through parentId, never a growing blob. */
export const messages = pgTable(
  'messages',
  {
    id: id(),
    conversationId: uuid('conversation_id').notNull().references(() => conversations.id, { onDelete: 'cascade' }),
    userId: uuid('user_id').notNull().references(() => users.id, { onDelete: 'cascade' }),
    parentId: uuid('parent_id'),
    role: text('role', { enum: ['system', 'user', 'assistant', 'tool'] }).notNull(),
    content: jsonb('content').$type<ContentPart[]>().notNull(),
    /** The text of `content`, kept for full-text search and token counting. */
    text: text('text').notNull().default(''),
    /**
     * What the message takes in a prompt, counted once when it is written
     * (o200k_base, see message-tokens.ts) so a turn never re-tokenizes its
     * history; null for rows written before the column, or whose count failed (estimated on read).
     */
    tokens: integer('tokens'),
    status: text('status', { enum: ['streaming', 'complete', 'failed', 'cancelled', 'flagged'] }).notNull().default('complete'),
    provider: text('provider'),
    model: text('model'),
    tokensIn: integer('tokens_in'),
    tokensOut: integer('tokens_out'),
    cachedTokens: integer('cached_tokens'),
    /** Cost in micro-dollars (1e-6 USD); null when the model's price is unknown. */
    costMicros: bigint('cost_micros', { mode: 'number' }),
    latencyMs: integer('latency_ms'),
    ttftMs: integer('ttft_ms'),
    finishReason: text('finish_reason'),
    error: jsonb('error').$type<{ code: string; message: string }>(),
    attempts: jsonb('attempts').$type<FailedAttempt[]>().notNull().default([]),
    /** The sources an answer was given (knowledge passages), numbered as the model was told to cite them. */
    citations: jsonb('citations').$type<Citation[]>().notNull().default([]),
    createdAt: createdAt(),
    completedAt: time('completed_at'),
    searchVector: tsvector('search_vector').generatedAlwaysAs((): SQL => sql`to_tsvector('english', ${messages.text})`),
  },
  (t) => [
    index('messages_conversation_idx').on(t.conversationId, t.id),
    // Both columns: a message's children (its siblings' list, the newest leaf below it) in one index scan,
    // never intersected with every message of the conversation (the embedded database keeps no statistics to tell).
    index('messages_parent_idx').on(t.parentId, t.conversationId),
    // A conversation's first messages (its root and the edits of it), for their sibling lists.
    index('messages_roots_idx').on(t.conversationId).where(sql`${t.parentId} is null`),
    // A user's messages newest first: search ranks the newest of a user's matches, found by walking these
    // where a word is common, by the GIN index below where it is rare.
    index('messages_user_created_idx').on(t.userId, t.createdAt, t.id),
    index('messages_user_search_idx').using('gin', t.userId, t.searchVector),
    // The answers still being written (few), for the schedule that fails those whose server went away: not a scan of every message.
    index('messages_streaming_idx').on(t.createdAt).where(sql`${t.status} = 'streaming'`),
    // A user's messages that carry a file (few), for marking a deleted file in them: not a scan of all their messages.
    index('messages_user_files_idx').on(t.userId).where(sql`${t.content} @> '[{"type":"file"}]'::jsonb`),
  ],
);

export const messageFeedback = pgTable(
  'message_feedback',
  {
    messageId: uuid('message_id').primaryKey().references(() => messages.id, { onDelete: 'cascade' }),
    userId: uuid('user_id').notNull().references(() => users.id, { onDelete: 'cascade' }),
    rating: text('rating', { enum: ['up', 'down'] }).notNull(),
    comment: text('comment'),
    createdAt: createdAt(),
    updatedAt: time('updated_at').notNull().defaultNow(),
  },
  // Foreign keys are indexed: deleting a user otherwise scans the whole table for their rows.
  (t) => [index('message_feedback_user_idx').on(t.userId)],
);

/**
 * A conversation shared by link: a read-only snapshot of the branch from its first message up to `leafId`, as it
 * was when shared (later messages are not shown). Only the token's SHA-256 is kept; `last4` tells links apart.
 * Revoking keeps the row (its token then answers 410) until the daily purge.
 */
export const conversationShares = pgTable(
  'conversation_shares',
  {
    id: id(),
    conversationId: uuid('conversation_id').notNull().references(() => conversations.id, { onDelete: 'cascade' }),
    userId: uuid('user_id').notNull().references(() => users.id, { onDelete: 'cascade' }),
    tokenHash: text('token_hash').notNull(),
    last4: text('last4').notNull(),
    /** The message the snapshot ends at: deleted with it. */
    leafId: uuid('leaf_id').notNull().references(() => messages.id, { onDelete: 'cascade' }),
    createdAt: createdAt(),
    expiresAt: time('expires_at'),
    revokedAt: time('revoked_at'),
  },
  (t) => [
    uniqueIndex('conversation_shares_token_key').on(t.tokenHash),
    // A conversation's links in the order they are listed, a page at a time.
    index('conversation_shares_conversation_idx').on(t.conversationId, t.id),
    // Foreign keys are indexed: deleting a user or a message otherwise scans the whole table for their rows.
    index('conversation_shares_user_idx').on(t.userId),
    index('conversation_shares_leaf_idx').on(t.leafId),
    // The daily purge of links that ended long ago reads only those that ended, not every live one.
    index('conversation_shares_revoked_idx').on(t.revokedAt).where(sql`${t.revokedAt} is not null`),
    index('conversation_shares_expires_idx').on(t.expiresAt).where(sql`${t.expiresAt} is not null`),
  ],
);

export type ConversationShareRow = typeof conversationShares.$inferSelect;
