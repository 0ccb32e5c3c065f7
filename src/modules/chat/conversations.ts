import { NotFound, ValidationError } from '../../errors.ts';
import { inTransaction, type Db } from '../../platform/db/database.ts';
import type { Grounding } from '../knowledge/index.ts';
import type { Projects } from '../projects/index.ts';
import { createConversationsRepository, type ConversationFilter, type ConversationRow } from './conversations-repository.ts';
import { createMessagesRepository } from './messages-repository.ts';
import { assertNotStreaming, inToolStep } from './messages.ts';
import type { Announce } from '../../platform/bus/bus.ts';

export interface ConversationInput {
  title?: string | null;
  projectId?: string | null;
  model?: string | null;
  pinned?: boolean;
}

export const toPublicConversation = (c: ConversationRow) => ({
  id: c.id,
  title: c.title,
  projectId: c.projectId,
  model: c.model,
  pinned: c.pinned,
  archived: c.archived,
  currentLeafId: c.currentLeafId,
  createdAt: c.createdAt.toISOString(),
  updatedAt: c.updatedAt.toISOString(),
});

/** Conversations: their settings and place in the list. Their messages are in messages.ts. */
export function createConversations(d: { db: Db; projects: Pick<Projects, 'exists'>; grounding: Pick<Grounding, 'copyConversationCollections'>; announce: Announce }) {
  const repo = createConversationsRepository(d.db);
  const messages = createMessagesRepository(d.db);

  async function ensureProject(userId: string, projectId: string | null | undefined) {
    if (projectId && !(await d.projects.exists(userId, projectId))) throw NotFound('Project', 'project_not_found');
  }

  async function get(userId: string, id: string): Promise<ConversationRow> {
    const conversation = await repo.get(userId, id);
    if (!conversation) throw NotFound('Conversation', 'conversation_not_found');
    return conversation;
  }

  return {
    /** The user's conversation, or NotFound (`conversation_not_found`) for anyone else's. */
    get,

    async create(userId: string, input: ConversationInput): Promise<ConversationRow> {
      await ensureProject(userId, input.projectId);
      const now = new Date();
      const row = await repo.insert({ ...input, userId, createdAt: now, updatedAt: now });
      d.announce('conversation.created', { userId, conversationId: row.id, projectId: row.projectId, title: row.title });
      return row;
    },

    /**
     * A new conversation that goes on from a message of this one: the branch up to it (default: the current leaf) is
     * copied, with the original's project, model and knowledge collections; the original is unchanged. The message
     * must be settled (not an answer still being written, nor one waiting for approvals: 409 `answer_in_progress`)
     * and not inside a tool step (400 `fork_in_tool_step`), so the copy can be continued like any conversation.
     */
    async fork(userId: string, id: string, input: { messageId?: string; title?: string | null }): Promise<ConversationRow> {
      const forked = await inTransaction(d.db, async (tx) => {
        const source = await repo.lock(id, tx);
        if (!source || source.userId !== userId) throw NotFound('Conversation', 'conversation_not_found');
        const leafId = input.messageId ?? source.currentLeafId;
        if (leafId) {
          const leaf = await messages.get(id, leafId, tx);
          if (!leaf) throw NotFound('Message', 'message_not_found');
          assertNotStreaming(leaf);
          if (inToolStep(leaf)) {
            throw ValidationError("A conversation cannot be forked inside a tool step (a model's tool calls or their results): fork at the answer that ends the step's turn, or at the question", 'fork_in_tool_step');
          }
        }
        const now = new Date();
        const title = input.title === undefined ? source.title : input.title;
        const row = await repo.insert({ userId, projectId: source.projectId, model: source.model, title, createdAt: now, updatedAt: now }, tx);
        const copiedLeaf = leafId ? await messages.copyBranch(id, leafId, row.id, tx) : null;
        if (copiedLeaf) await repo.setCurrentLeaf(row.id, copiedLeaf, tx, false);
        return { ...row, currentLeafId: copiedLeaf };
      });
      await d.grounding.copyConversationCollections(userId, id, forked.id);
      d.announce('conversation.created', { userId, conversationId: forked.id, projectId: forked.projectId, title: forked.title });
      return forked;
    },

    /** Pinned first, then most recently updated; rows carry the `cursor` of their position. */
    list: (userId: string, filter: ConversationFilter) => repo.list(userId, filter),

    async update(userId: string, id: string, patch: ConversationInput & { archived?: boolean }): Promise<ConversationRow> {
      await ensureProject(userId, patch.projectId);
      const updated = await repo.update(userId, id, patch);
      if (!updated) throw NotFound('Conversation', 'conversation_not_found');
      return updated;
    },

    /** Deletes the conversation with all its messages and their feedback. */
    async delete(userId: string, id: string): Promise<void> {
      if (!(await repo.delete(userId, id))) throw NotFound('Conversation', 'conversation_not_found');
    },
  };
}

export type Conversations = ReturnType<typeof createConversations>;
