import { Conflict, Gone, NotFound } from '../../errors.ts';
import { randomToken, sha256Hex } from '../../platform/crypto/cipher.ts';
import type { Db } from '../../platform/db/database.ts';
import type { Limiter } from '../../platform/ratelimit/limiter.ts';
import { createConversationsRepository } from './conversations-repository.ts';
import { createMessagesRepository, type MessageRow } from './messages-repository.ts';
import { inToolStep } from './messages.ts';
import type { ConversationShareRow } from './schema.ts';
import { createSharesRepository } from './shares-repository.ts';

const TOKEN_PREFIX = 'pcs_';

/** What a shared conversation shows of a message: who said it, the text, the files by name. */
export interface SharedMessage {
  role: 'user' | 'assistant';
  text: string;
  files: Array<{ name: string; mimeType: string }>;
  createdAt: Date;
}

const linkNotFound = () => NotFound('Share link', 'link_not_found');

/**
 * The messages a reader of a shared conversation sees: what the user asked and what was answered, nothing of how
 * (tool steps, sources, costs, providers) nor of the files but their names. A flagged answer's text is kept for
 * admins only, as everywhere.
 */
function shown(branch: MessageRow[]): SharedMessage[] {
  const said = branch.filter((m) => m.role === 'user' || (m.role === 'assistant' && !inToolStep(m)));
  return said.map((m) => ({
    role: m.role as SharedMessage['role'],
    text: m.status === 'flagged' ? '' : m.content.flatMap((p) => (p.type === 'text' ? [p.text] : [])).join('\n\n'),
    files: m.content.flatMap((p) => (p.type === 'file' ? [{ name: p.name, mimeType: p.mimeType }] : [])),
    createdAt: m.createdAt,
  }));
}

/**
 * Conversations shared by link: a read-only snapshot of a branch up to one of its messages, for anyone who holds
 * the token (shown once, only its hash kept; expiring, revocable), as document links are made.
 */
export function createShares(d: {
  db: Db;
  /** Links that may open one conversation at once (CHAT_MAX_SHARES_PER_CONVERSATION). */
  maxShares: number;
  /** Days a revoked or expired link stays listed (CHAT_SHARE_HISTORY_DAYS; 0: for ever). */
  historyDays: number;
  /** Counts reads by client address (CHAT_SHARE_READS_PER_MINUTE): reading takes no sign-in. */
  readers: Limiter;
}) {
  const repo = createSharesRepository(d.db);
  const conversations = createConversationsRepository(d.db);
  const messages = createMessagesRepository(d.db);

  async function owned(userId: string, conversationId: string) {
    const conversation = await conversations.get(userId, conversationId);
    if (!conversation) throw NotFound('Conversation', 'conversation_not_found');
    return conversation;
  }

  return {
    /** The per-address limit on reading shared conversations, which the route counts. */
    readers: d.readers,

    /**
     * A link to the branch ending at `messageId` (default: the current leaf), which must be settled: an answer still
     * being written or waiting for approvals is 409 `answer_in_progress`, a conversation with no message 409 `conversation_empty`.
     */
    async create(userId: string, conversationId: string, input: { messageId?: string; expiresIn?: number }): Promise<ConversationShareRow & { token: string }> {
      const conversation = await owned(userId, conversationId);
      const leafId = input.messageId ?? conversation.currentLeafId;
      if (!leafId) throw Conflict('The conversation has no messages yet: there is nothing to share', 'conversation_empty');
      const leaf = await messages.get(conversationId, leafId);
      if (!leaf) throw NotFound('Message', 'message_not_found');
      if (leaf.status === 'streaming') throw Conflict('This answer is still being written (or waits for approvals): share it once it ended', 'answer_in_progress');
      const token = `${TOKEN_PREFIX}${randomToken(32)}`;
      const expiresAt = input.expiresIn ? new Date(Date.now() + input.expiresIn * 1000) : null;
      const row = await repo.insert({ conversationId, userId, tokenHash: sha256Hex(token), last4: token.slice(-4), leafId, expiresAt }, d.maxShares);
      if (!row) throw Conflict(`At most ${d.maxShares} share links may open a conversation: revoke one first`, 'share_limit');
      return { ...row, token };
    },

    /** Oldest first, a page at a time, revoked and expired ones included until they are purged. */
    async list(userId: string, conversationId: string, page: { limit: number; after?: string }): Promise<ConversationShareRow[]> {
      await owned(userId, conversationId);
      return repo.list(conversationId, page);
    },

    async revoke(userId: string, conversationId: string, shareId: string): Promise<void> {
      await owned(userId, conversationId);
      if (!(await repo.revoke(conversationId, shareId))) throw NotFound('Share link', 'link_not_found');
    },

    /** What a link shows, to anyone holding its token: 404 for a token never issued (or purged), 410 once revoked or expired. */
    async open(token: string): Promise<{ title: string | null; sharedAt: Date; messages: SharedMessage[] }> {
      const share = await repo.byHash(sha256Hex(token));
      if (!share) throw linkNotFound();
      if (share.revokedAt) throw Gone('This share link was revoked', 'link_revoked');
      if (share.expiresAt && share.expiresAt <= new Date()) throw Gone('This share link has expired', 'link_expired');
      const [conversation, branch] = await Promise.all([conversations.byId(share.conversationId), messages.branch(share.conversationId, share.leafId)]);
      if (!conversation || !branch.length) throw linkNotFound();
      return { title: conversation.title, sharedAt: share.createdAt, messages: shown(branch) };
    },

    /**
     * Links revoked or expired over CHAT_SHARE_HISTORY_DAYS ago are deleted (create-and-revoke would otherwise grow a
     * conversation's rows for ever); none with 0. Their token is then an unknown one (404).
     */
    purgeEnded: async (now = new Date()) => (d.historyDays ? repo.purgeEndedBefore(new Date(now.getTime() - d.historyDays * 86_400_000)) : 0),
  };
}

export type Shares = ReturnType<typeof createShares>;
