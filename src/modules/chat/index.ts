import { AppError, NotFound } from '../../errors.ts';
import { defineModule } from '../module.ts';
import { answerReadyCategory, answerReadyNotice } from './answer-ready.ts';
import { createAttachments } from './attachments.ts';
import { conversationsRoutes } from './conversation-routes.ts';
import { createConversations, type Conversations } from './conversations.ts';
import { createConversationsRepository } from './conversations-repository.ts';
import { chatFootprint } from './footprint.ts';
import { createGeneration, type Generation } from './generation.ts';
import { generationRoutes } from './generation-routes.ts';
import { messagesRoutes } from './message-routes.ts';
import { createMessages, type Messages } from './messages.ts';
import { conversations, conversationShares, messageFeedback, messages } from './schema.ts';
import { createSearch, type Search } from './search.ts';
import { searchRoutes } from './search-routes.ts';
import { shareRoutes } from './share-routes.ts';
import { createShares, type Shares } from './shares.ts';
import { chatEnv, chatSettings, type ChatSettings } from './settings.ts';
import { createTitles, type Titles } from './titles.ts';
import { chatExport } from './export.ts';
import { chatErasure } from './erasure.ts';

export type { Conversations } from './conversations.ts';
export type { Messages } from './messages.ts';
export type { Search } from './search.ts';
export type { Shares } from './shares.ts';

declare module '../../platform/bus/events.ts' {
  interface DomainEvents {
    /** A conversation was created. */
    'conversation.created': { userId: string; conversationId: string; projectId: string | null; title: string | null };
    /** A user message was stored and an answer placeholder created for it (also on regenerate). */
    'message.created': { userId: string; conversationId: string; userMessageId: string; assistantMessageId: string; model: string | null };
    /** The first tokens of an answer arrived from the provider. */
    'message.stream.started': { userId: string; conversationId: string; messageId: string; provider: string | null; model: string | null };
    /** An answer paused: these tool calls wait for the user to approve or deny them. */
    'message.tool.approval_required': { userId: string; conversationId: string; messageId: string; calls: Array<{ id: string; name: string; arguments: string }> };
    /** An answer ended: its final status, usage and error, never its text (that is on the message). */
    'message.stream.finished': {
      userId: string;
      conversationId: string;
      /** The conversation's project; null when it has none. */
      projectId: string | null;
      messageId: string;
      status: 'complete' | 'failed' | 'cancelled' | 'flagged';
      provider: string | null;
      model: string | null;
      finishReason: string | null;
      usage: { inputTokens: number | null; outputTokens: number | null; cachedTokens: number | null; costMicros: number | null };
      latencyMs: number | null;
      error: { code: string; message: string } | null;
    };
  }
}

declare module '../module.ts' {
  interface ServiceMap {
    conversations: Conversations;
    /** Messages as a tree of branches, feedback, and the writes generation makes. */
    messages: Messages;
    /** Full-text search over the user's conversations and messages. */
    search: Search;
    /** Answers: stored, streamed from any instance, resumed, cancelled. */
    generation: Generation;
    /** Conversation titles, made by a queued job after the first exchange. */
    titles: Titles;
    /** Conversations shared by link: read-only snapshots for anyone holding the token. */
    conversationShares: Shares;
  }
  interface ModuleSettings {
    chat: ChatSettings;
  }
}

/**
 * Chat: conversations, branching messages with files, streamed answers with fallback, resume and cancel, titles, search, share links;
 * an `answer.ready` notification for an answer that finished after its user left it.
 */
export const chatModule = defineModule({
  name: 'chat',
  erasure: ({ deps }) => chatErasure(deps.db),
  exports: ({ deps }) => chatExport(deps.db),
  tables: { conversations, messages, messageFeedback, conversationShares },
  config: { env: chatEnv, read: chatSettings },
  needs: ['ai', 'projects', 'jobs', 'limits', 'users', 'files', 'grounding', 'toolbox', 'safety'],
  // The answer-ready notice: sent through notifications, unless realtime says the user has a socket open.
  uses: ['notifications', 'realtime'],
  provides: ['conversations', 'messages', 'search', 'generation', 'titles', 'conversationShares'],
  services({ deps, config, services }) {
    const { ai, projects, jobs, users, files } = services;
    const conversations = createConversations({ db: deps.db, projects, grounding: services.grounding, announce: deps.announce });
    const messages = createMessages({ db: deps.db, tokens: ai.tokens });
    const titles = createTitles({ ai, conversations: createConversationsRepository(deps.db), logger: deps.logger, jobs });
    const generation = createGeneration({
      ai,
      messages,
      attachments: createAttachments({ files, tokens: ai.tokens }),
      grounding: services.grounding,
      conversations,
      projects,
      users,
      streams: deps.streams,
      titles,
      logger: deps.logger,
      limits: config.chat,
      announce: deps.announce,
      toolbox: services.toolbox,
      safety: services.safety,
      tools: config.tools,
    });
    const conversationShares = createShares({
      db: deps.db,
      maxShares: config.chat.maxShares,
      historyDays: config.chat.shareHistoryDays,
      readers: deps.limiters.create({ name: 'shared-conversation:ip', points: config.chat.shareReadsPerMinute, durationSeconds: 60 }),
    });
    return { conversations, messages, search: createSearch(deps.db), generation, titles, conversationShares };
  },
  start: async ({ generation, notifications, realtime }) => generation.onUnattended(answerReadyNotice({ notifications, realtime })),
  routes(app, ctx) {
    conversationsRoutes(app, ctx);
    messagesRoutes(app, ctx);
    generationRoutes(app, ctx);
    searchRoutes(app, ctx);
    shareRoutes(app, ctx);
  },
  jobs: ({ services }) => [services.titles.job],
  // A deleted file shows as deleted in the messages that carried it (name kept); the bus retries until they are marked.
  subscriptions: ({ services }) => [
    {
      group: 'chat',
      types: ['file.deleted'],
      handler: async (event) => {
        if (event.type === 'file.deleted') await services.messages.markFileDeleted(event.payload.userId, event.payload.fileId);
      },
    },
  ],
  schedules: ({ deps, config, services }) => [
    {
      name: 'chat.fail-abandoned',
      cron: '*/5 * * * *',
      // Well past the longest an answer may run: whoever was generating it is gone.
      handler: async () => {
        const now = Date.now();
        // A turn paused for approvals waits as long as its stream lives (see deps.ts); one still running, as long as it may run.
        const abandoned = await services.messages.failAbandoned(
          new Date(now - (config.chat.maxStreamSeconds + 300) * 1000),
          new Date(now - (2 * config.chat.maxStreamSeconds + config.chat.streamRetentionSeconds + 300) * 1000),
        );
        if (abandoned) deps.logger.warn({ abandoned }, 'marked abandoned generations failed');
        return { abandoned };
      },
    },
    // Revoking keeps a link's row (its token then answers 410): only the old ones go, so the owner's list stays short.
    { name: 'chat.purge-shares', cron: '41 4 * * *', handler: async () => ({ purged: await services.conversationShares.purgeEnded() }) },
  ],
  topics: ({ conversations }) => ({
    topics: [
      {
        name: 'conversation',
        withId: true,
        scope: 'chat',
        async authorize(p, id) {
          try {
            await conversations.get(p.userId, id);
          } catch (err) {
            throw err instanceof AppError && err.status === 404 ? NotFound('Conversation') : err;
          }
        },
      },
      { name: 'conversations', scope: 'chat' },
    ],
    events: ['message.created', 'message.stream.started', 'message.tool.approval_required', 'message.stream.finished'],
    route: (type, payload) => (type.startsWith('message.') ? [`conversation:${String(payload.conversationId)}`, 'conversations'] : []),
  }),
  footprint: chatFootprint,
  notifications: [answerReadyCategory],
});
