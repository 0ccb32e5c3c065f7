import { NotFound } from '../../errors.ts';
import type { Db } from '../../platform/db/database.ts';
import type { Projects } from '../projects/index.ts';
import { createConversationsRepository, type ConversationFilter, type ConversationRow } from './conversations-repository.ts';
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
export function createConversations(d: { db: Db; projects: Pick<Projects, 'exists'>; announce: Announce }) {
  const repo = createConversationsRepository(d.db);

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
