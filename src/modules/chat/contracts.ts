import { z } from 'zod';
import { nameText } from '../../http/names.ts';
import { opaqueCursor, optionalBody, pageQuery } from '../../http/pagination.ts';
import { modelId } from '../ai/index.ts';
import type { SearchPosition } from './search.ts';

export const MESSAGE_MAX_CHARS = 100_000;
/** Files one message may carry. */
export const MESSAGE_MAX_FILES = 10;
export const TITLE_MAX_CHARS = 200;

/** Whether a message's text shows nothing at all (a message needs some text that does, or a file). */
export { isBlank } from '../../platform/text.ts';

// A title that shows nothing would list as a blank row: it is no title (send null for none).
const title = nameText(TITLE_MAX_CHARS);

const conversationFields = z
  .object({
    title: title.nullable(),
    projectId: z.uuid().nullable().describe('One of your projects'),
    model: modelId.nullable().describe("null for the project's model, then your `defaultModel` preference, then the server default"),
    pinned: z.boolean(),
  })
  .partial()
  .strict();

export const createConversationBody = optionalBody(conversationFields);
export const updateConversationBody = conversationFields.extend({ archived: z.boolean().optional() });

export const forkConversationBody = optionalBody(
  z
    .object({
      messageId: z.uuid().describe("The message the copy goes up to, with the messages above it on its branch; default: the conversation's current leaf"),
      title: title.nullable().describe("Left out: the original's"),
    })
    .partial()
    .strict(),
);

/** Where a conversation list page ends: `(pinned, updatedAt, id)` of its last row, opaque to clients. */
export interface ConversationCursor {
  pinned: boolean;
  updatedAt: string;
  id: string;
}

/** PostgreSQL has no year 0 (its 1 BC is JavaScript's year 0): a cursor naming one would fail the query. */
const beforeYearOne = (time: string) => time.startsWith('0000-');

const cursorPayload = z.tuple([z.union([z.literal(0), z.literal(1)]), z.iso.datetime().refine((t) => !beforeYearOne(t)), z.uuid()]);

export const encodeConversationCursor = (c: ConversationCursor) =>
  Buffer.from(JSON.stringify([c.pinned ? 1 : 0, c.updatedAt, c.id])).toString('base64url');

const booleanParam = z.enum(['true', 'false']);

export const conversationsQuery = pageQuery.extend({
  cursor: z
    .string()
    .max(300)
    .optional()
    .transform((c, ctx): ConversationCursor | undefined => {
      if (c === undefined) return undefined;
      let parsed: unknown;
      try {
        parsed = JSON.parse(Buffer.from(c, 'base64url').toString('utf8'));
      } catch {
        parsed = undefined;
      }
      const ok = cursorPayload.safeParse(parsed);
      if (!ok.success) {
        ctx.addIssue({ code: 'custom', message: 'invalid cursor' });
        return z.NEVER;
      }
      const [pinned, updatedAt, id] = ok.data;
      return { pinned: pinned === 1, updatedAt, id };
    }),
  projectId: z.uuid().optional(),
  archived: booleanParam.default('false').transform((v) => v === 'true').describe('true for archived conversations only'),
  pinned: booleanParam.transform((v) => v === 'true').optional(),
});

export const conversationSchema = z
  .object({
    id: z.uuid(),
    title: z.string().nullable(),
    projectId: z.uuid().nullable(),
    model: z.string().nullable(),
    pinned: z.boolean(),
    archived: z.boolean(),
    currentLeafId: z.uuid().nullable().describe('The last message of the branch being shown'),
    createdAt: z.iso.datetime(),
    updatedAt: z.iso.datetime(),
  })
  .meta({ id: 'Conversation' });

const textPart = z.object({ type: z.literal('text'), text: z.string().max(MESSAGE_MAX_CHARS) });

// Its length is the service's to check, across every part (400 `message_too_long`), not each part's.
const textPartInput = z.object({ type: z.literal('text'), text: z.string() });

export const contentPartInput = z.discriminatedUnion('type', [textPartInput, z.object({ type: z.literal('file'), fileId: z.uuid().describe('One of your files (POST /v1/files)') }).strict()]);

export const contentPart = z
  .discriminatedUnion('type', [
    textPart,
    z.object({
      type: z.literal('file'),
      fileId: z.uuid(),
      name: z.string(),
      mimeType: z.string(),
      size: z.number().int(),
      deleted: z.boolean().optional().describe('true once the file was deleted: its name is kept, its contents are gone (the model is told so)'),
    }),
    z.object({
      type: z.literal('tool_call'),
      id: z.string().describe("The call's id, as the model gave it"),
      name: z.string(),
      arguments: z.string().describe('JSON text, as the model wrote it'),
    }),
    z.object({
      type: z.literal('tool_result'),
      callId: z.string(),
      name: z.string(),
      arguments: z.string(),
      status: z.enum(['ok', 'error', 'pending_approval', 'approved', 'denied', 'cancelled']).describe('`pending_approval` until the user decides; `approved` while it runs after that'),
      result: z.string().nullable().describe('What the model was given back'),
      error: z.object({ code: z.string(), message: z.string() }).nullable(),
      durationMs: z.number().int().nullable(),
    }),
  ])
  .meta({ id: 'ContentPart' });

const fileCount = (c: string | Array<{ type: string }>) => (typeof c === 'string' ? 0 : c.filter((p) => p.type === 'file').length);

/**
 * A message's content as a client sends it: a string, or text and file parts;
 * at most MESSAGE_MAX_FILES files. Its text is checked by the service, with
 * codes of their own: blank without a file is 400 `message_empty`, more than
 * MESSAGE_MAX_CHARS characters across its parts 400 `message_too_long`.
 */
export const messageContentInput = z
  .union([z.string(), z.array(contentPartInput).min(1).max(100)])
  .refine((c) => fileCount(c) <= MESSAGE_MAX_FILES, `at most ${MESSAGE_MAX_FILES} files`)
  .describe(`Text of at most ${MESSAGE_MAX_CHARS} characters across its parts (400 \`message_too_long\`), blank only with a file (400 \`message_empty\`)`);

/** The plain text of content parts (files left out), as stored in `messages.text`. */
export function contentText(content: string | ReadonlyArray<{ type: string; text?: string }>): string {
  return typeof content === 'string' ? content : content.flatMap((p) => (p.type === 'text' ? [p.text ?? ''] : [])).join('\n\n');
}

export const feedbackBody = z
  .object({ rating: z.enum(['up', 'down']), comment: z.string().trim().max(2000).nullable().optional() })
  .strict();

export const feedbackSchema = z
  .object({ rating: z.enum(['up', 'down']), comment: z.string().nullable(), createdAt: z.iso.datetime(), updatedAt: z.iso.datetime() })
  .meta({ id: 'MessageFeedback' });

export const messageSchema = z
  .object({
    id: z.uuid(),
    conversationId: z.uuid(),
    parentId: z.uuid().nullable(),
    role: z.enum(['system', 'user', 'assistant', 'tool']),
    content: z.array(contentPart),
    status: z.enum(['streaming', 'complete', 'failed', 'cancelled', 'flagged']).describe('`flagged`: stopped by the safety checks; its text is kept for admins only'),
    provider: z.string().nullable(),
    model: z.string().nullable(),
    tokensIn: z.number().int().nullable(),
    tokensOut: z.number().int().nullable(),
    cachedTokens: z.number().int().nullable(),
    costMicros: z.number().int().nullable().describe('Cost in millionths of a US dollar; null when the price is unknown'),
    cost: z.string().nullable().describe('The same cost as a decimal USD string, e.g. "0.000420"'),
    latencyMs: z.number().int().nullable(),
    ttftMs: z.number().int().nullable().describe('Time to first token'),
    finishReason: z.string().nullable(),
    error: z.object({ code: z.string(), message: z.string() }).nullable(),
    attempts: z
      .array(z.object({ provider: z.string(), model: z.string(), error: z.string(), code: z.string(), status: z.number().int().optional(), at: z.string() }))
      .describe('Failed attempts before this answer (fallbacks, retries)'),
    citations: z
      .array(
        z.object({
          n: z.number().int().describe('The number the answer cites it by: [n]'),
          kind: z.enum(['document', 'file']),
          refId: z.uuid().describe('The document or file'),
          itemId: z.uuid(),
          title: z.string(),
          version: z.number().int().nullable().describe("The document's version given (null for files)"),
          chunkId: z.uuid().nullable().describe('The passage; null when the whole document or file was given'),
          start: z.number().int().nullable(),
          end: z.number().int().nullable(),
          excerpt: z.string(),
          score: z.number(),
        }),
      )
      .describe("The sources an answer was given from its project's and conversation's knowledge collections (empty for none)"),
    siblingIds: z.array(z.uuid()).describe('This message and its alternatives (same parent), oldest first: the branches a UI can switch between'),
    siblingIndex: z.number().int().describe('Position of this message in siblingIds'),
    feedback: feedbackSchema.nullable(),
    createdAt: z.iso.datetime(),
    completedAt: z.iso.datetime().nullable(),
  })
  .meta({ id: 'Message' });

export const branchSchema = z
  .object({
    conversationId: z.uuid(),
    leafId: z.uuid().nullable().describe('The last message of this branch'),
    data: z.array(messageSchema).describe('The branch from its first message to leafId; with `limit`, its newest `limit` messages, first to last'),
    nextCursor: z.string().nullable().optional().describe('Only with `limit`: pass as `cursor` for the messages before these; null at the first message'),
  })
  .meta({ id: 'MessageBranch' });

export const conversationParams = z.object({ id: z.uuid() });
export const messageParams = z.object({ id: z.uuid(), messageId: z.uuid() });
export const branchQuery = z.object({
  leafId: z.uuid().optional().describe("Another branch's last message; the conversation's current leaf by default"),
  limit: z.coerce.number().int().min(1).max(200).optional().describe('At most this many messages, the newest of the branch (or of the page before `cursor`); the whole branch without it'),
  cursor: z.uuid().optional().describe("The previous page's `nextCursor`: the messages before it"),
});

/** A search cursor's text: the last hit's rank, time (to the microsecond) and id. */
const SEARCH_POSITION = /^(\d+(?:\.\d+)?(?:e[-+]?\d{1,2})?) (\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z) ([0-9a-f-]{36})$/;

/** The position in a cursor, when it is one a search could have given: PostgreSQL must read each part back (a `real`, a real time, a uuid). */
function readSearchCursor(text: string): SearchPosition | undefined {
  const [, rank, createdAt, id] = SEARCH_POSITION.exec(text) ?? [];
  if (!rank || !createdAt || !id || beforeYearOne(createdAt) || !z.uuid().safeParse(id).success) return undefined;
  const r = Number(rank);
  if (r !== 0 && !(r >= 1e-37 && r <= 1e37)) return undefined;
  // Date.parse takes 30 February as 2 March: the time must come back as written.
  const time = Date.parse(createdAt);
  if (Number.isNaN(time) || new Date(time).toISOString().slice(0, 23) !== createdAt.slice(0, 23)) return undefined;
  return { rank, createdAt, id };
}

export const searchQuery = z.object({
  q: z.string().trim().min(1).max(256).describe('Web-search syntax: words, "a phrase", or, -excluded'),
  limit: z.coerce.number().int().min(1).max(50).default(20),
  cursor: opaqueCursor(readSearchCursor),
});

export const encodeSearchCursor = (p: SearchPosition) => Buffer.from(`${p.rank} ${p.createdAt} ${p.id}`).toString('base64url');

export const searchResultSchema = z
  .object({
    type: z.enum(['conversation', 'message']),
    conversationId: z.uuid(),
    messageId: z.uuid().nullable(),
    title: z.string().nullable().describe("The conversation's title, plain text"),
    snippet: z.string().describe('HTML-escaped text around the matches, each match in <mark>…</mark>'),
    rank: z.number(),
    createdAt: z.iso.datetime(),
  })
  .meta({ id: 'SearchResult' });

export const searchPage = z.object({ data: z.array(searchResultSchema), nextCursor: z.string().nullable() });
