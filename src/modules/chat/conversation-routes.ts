import { z } from 'zod';
import { principal } from '../../http/guards.ts';
import { page } from '../../http/pagination.ts';
import { problemSchema } from '../../http/problem.ts';
import type { App } from '../../http/types.ts';
import type { RouteContext } from '../module.ts';
import {
  conversationParams,
  conversationSchema,
  conversationsQuery,
  createConversationBody,
  encodeConversationCursor,
  forkConversationBody,
  updateConversationBody,
} from './contracts.ts';
import { toPublicConversation } from './conversations.ts';

const problems = { 400: problemSchema, 401: problemSchema, 403: problemSchema, 404: problemSchema };
const tags = ['conversations'];

/** Conversations. API keys need the `chat` scope. */
export function conversationsRoutes(app: App, { services, guards }: RouteContext<'conversations' | 'generation'>) {
  const { conversations, generation } = services;
  const onRequest = guards.user({ scope: 'chat' });

  app.post('/conversations', {
    schema: { tags, summary: 'Start a conversation', body: createConversationBody, response: { 201: conversationSchema, ...problems } },
    onRequest,
    handler: async (request, reply) => reply.status(201).send(toPublicConversation(await conversations.create(principal(request).userId, request.body))),
  });

  app.get('/conversations', {
    schema: {
      tags,
      summary: 'List your conversations: pinned first, then most recently updated',
      description: 'Archived conversations are left out unless `archived=true`, which lists only those.',
      querystring: conversationsQuery,
      response: { 200: page(conversationSchema), ...problems },
    },
    onRequest,
    handler: async (request) => {
      const { limit, ...filter } = request.query;
      const rows = await conversations.list(principal(request).userId, { ...filter, limit: limit + 1 });
      const more = rows.length > limit;
      const items = more ? rows.slice(0, limit) : rows;
      return { data: items.map(toPublicConversation), nextCursor: more ? encodeConversationCursor(items[items.length - 1]!.cursor) : null };
    },
  });

  app.get('/conversations/:id', {
    schema: { tags, summary: 'One conversation', params: conversationParams, response: { 200: conversationSchema, ...problems } },
    onRequest,
    handler: async (request) => toPublicConversation(await conversations.get(principal(request).userId, request.params.id)),
  });

  app.patch('/conversations/:id', {
    schema: {
      tags,
      summary: 'Rename, pin, archive or move a conversation',
      description: 'Send only what changes. `projectId` must be one of your projects, or null.',
      params: conversationParams,
      body: updateConversationBody,
      response: { 200: conversationSchema, ...problems },
    },
    onRequest,
    handler: async (request) => toPublicConversation(await conversations.update(principal(request).userId, request.params.id, request.body)),
  });

  app.post('/conversations/:id/fork', {
    schema: {
      tags,
      summary: 'Fork a conversation: a new one that goes on from one of its messages',
      description:
        "Copies the branch up to `messageId` (default: the current leaf) into a new conversation with the original's project, model and knowledge collections, and the original's title unless `title` is given; the original is unchanged. The message must not be an answer still being written or waiting for approvals (409 `answer_in_progress`), nor part of a tool step (400 `fork_in_tool_step`). Feedback is not copied.",
      params: conversationParams,
      body: forkConversationBody,
      response: { 201: conversationSchema, 409: problemSchema, ...problems },
    },
    onRequest,
    handler: async (request, reply) => reply.status(201).send(toPublicConversation(await conversations.fork(principal(request).userId, request.params.id, request.body ?? {}))),
  });

  app.delete('/conversations/:id', {
    schema: { tags, summary: 'Delete a conversation and all its messages', params: conversationParams, response: { 204: z.null(), ...problems } },
    onRequest,
    handler: async (request, reply) => {
      const userId = principal(request).userId;
      // Answers still being written stop first: nobody will read them, and their provider calls would run on, billed.
      await generation.stopAll(userId, request.params.id);
      await conversations.delete(userId, request.params.id);
      return reply.status(204).send(null);
    },
  });
}
