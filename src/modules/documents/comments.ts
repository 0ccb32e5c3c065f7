import { uuidv7 } from 'uuidv7';
import { Conflict, Forbidden, NotFound, ValidationError } from '../../errors.ts';
import type { Announce } from '../../platform/bus/bus.ts';
import type { Db } from '../../platform/db/database.ts';
import { need, type Grant } from './access.ts';
import { createCommentsRepository } from './comments-repository.ts';
import type { CommentRow } from './schema.ts';
import { LIMITS } from './settings.ts';

export interface NewComment {
  body: string;
  parentId?: string;
  quote?: string;
  anchorStart?: number;
  anchorEnd?: number;
  mentions?: string[];
}

/** Where a new thread's quote sits in the body: the offsets given (checked), else its first occurrence. */
function anchor(body: string, input: NewComment): { quote: string; anchorStart: number; anchorEnd: number } {
  const { quote, anchorStart: start, anchorEnd: end } = input;
  if (!quote) throw ValidationError('A new thread quotes the passage it is about (`quote`)', 'quote_required');
  if (start !== undefined || end !== undefined) {
    if (start === undefined || end === undefined || end <= start || end > body.length || body.slice(start, end) !== quote) {
      throw ValidationError('anchorStart and anchorEnd must mark exactly the quoted passage in the current body', 'anchor_mismatch');
    }
    return { quote, anchorStart: start, anchorEnd: end };
  }
  const at = body.indexOf(quote);
  if (at < 0) throw ValidationError('The quoted passage is not in the current body', 'quote_not_found');
  return { quote, anchorStart: at, anchorEnd: at + quote.length };
}

/**
 * Comment threads: a root quotes a passage, replies nest up to LIMITS.commentDepth
 * (a deeper reply is a 400, never moved elsewhere), mentions name only people
 * the document is shared with. Every function takes the caller's grant (as a
 * reader or through a link) and checks its role here.
 */
export function createComments(d: {
  db: Db;
  readersAmong: (documentId: string, userIds: readonly string[]) => Promise<string[]>;
  announce: Announce;
  /** Comments one document may hold, replies included (DOCUMENTS_MAX_COMMENTS). */
  maxComments: number;
}) {
  const repo = createCommentsRepository(d.db);

  async function commentOf(grant: Grant, id: string): Promise<CommentRow> {
    const comment = await repo.get(grant.doc.id, id);
    if (!comment) throw NotFound('Comment', 'comment_not_found');
    return comment;
  }

  /** A comment deleted by another request between this one's check and its write: the 404 the check would give now. */
  function stillThere(row: CommentRow | undefined): CommentRow {
    if (!row) throw NotFound('Comment', 'comment_not_found');
    return row;
  }

  async function threadRoot(grant: Grant, id: string): Promise<CommentRow> {
    const comment = await commentOf(grant, id);
    if (comment.parentId) throw ValidationError('Resolve or reopen the thread: its first comment, not a reply', 'not_a_thread');
    return comment;
  }

  return {
    get: (grant: Grant, id: string) => commentOf(grant, id),

    list(grant: Grant, page: { limit: number; cursor?: string; resolved?: boolean }): Promise<CommentRow[]> {
      return repo.list(grant.doc.id, page);
    },

    async create(grant: Grant, input: NewComment): Promise<CommentRow> {
      need(grant, 'commenter', 'comment');
      const id = uuidv7();
      let placed: { parentId: string | null; threadId: string; depth: number; quote: string | null; anchorStart: number | null; anchorEnd: number | null };
      if (input.parentId) {
        if (input.quote !== undefined || input.anchorStart !== undefined || input.anchorEnd !== undefined) {
          throw ValidationError('A reply belongs to its thread: only a new thread quotes a passage', 'reply_cannot_quote');
        }
        const parent = await commentOf(grant, input.parentId);
        if (parent.depth + 1 > LIMITS.commentDepth) {
          throw ValidationError(`Replies nest at most ${LIMITS.commentDepth} deep; reply higher up the thread`, 'comment_too_deep', { maxDepth: LIMITS.commentDepth });
        }
        placed = { parentId: parent.id, threadId: parent.threadId, depth: parent.depth + 1, quote: null, anchorStart: null, anchorEnd: null };
      } else {
        placed = { parentId: null, threadId: id, depth: 0, ...anchor(grant.doc.body, input) };
      }
      const mentions = input.mentions ?? [];
      if (mentions.length) {
        // Only the people mentioned are looked up, not everyone the document is shared with.
        const readers = new Set(await d.readersAmong(grant.doc.id, mentions));
        const outside = mentions.filter((id) => !readers.has(id));
        if (outside.length) throw ValidationError('Only people the document is shared with can be mentioned', 'mention_not_allowed', { userIds: outside });
      }
      const comment = await repo.insert({ id, documentId: grant.doc.id, authorId: grant.userId, body: input.body, mentions, ...placed }, d.maxComments);
      if (!comment) throw Conflict(`At most ${d.maxComments} comments per document: delete one first`, 'comment_limit');
      d.announce('comment.created', { userId: grant.userId, documentId: grant.doc.id, commentId: comment.id, parentId: comment.parentId, mentions });
      return comment;
    },

    /** Only its author rewrites a comment. */
    async edit(grant: Grant, id: string, body: string): Promise<CommentRow> {
      need(grant, 'commenter', 'edit comments');
      const comment = await commentOf(grant, id);
      if (comment.authorId !== grant.userId) throw Forbidden('Only its author may edit a comment', 'not_comment_author');
      return stillThere(await repo.update(id, { body }));
    },

    /** Its author or the document's owner; its replies go with it. */
    async delete(grant: Grant, id: string): Promise<void> {
      const comment = await commentOf(grant, id);
      if (comment.authorId !== grant.userId) need(grant, 'owner', "delete others' comments");
      else need(grant, 'commenter', 'delete comments');
      await repo.delete(id);
    },

    async resolve(grant: Grant, id: string, resolved: boolean): Promise<CommentRow> {
      need(grant, 'commenter', resolved ? 'resolve threads' : 'reopen threads');
      const root = await threadRoot(grant, id);
      if (Boolean(root.resolvedAt) === resolved) return root;
      return stillThere(await repo.update(id, resolved ? { resolvedAt: new Date(), resolvedBy: grant.userId } : { resolvedAt: null, resolvedBy: null }));
    },
  };
}

export type Comments = ReturnType<typeof createComments>;
