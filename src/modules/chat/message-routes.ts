import { z } from 'zod';
import { principal } from '../../http/guards.ts';
import { problemSchema } from '../../http/problem.ts';
import type { App } from '../../http/types.ts';
import type { RouteContext } from '../module.ts';
import { branchQuery, branchSchema, conversationParams, feedbackBody, feedbackSchema, messageParams, messageSchema } from './contracts.ts';
import { toPublicFeedback, toPublicMessage, type MessageView } from './messages.ts';

const problems = { 400: problemSchema, 401: problemSchema, 403: problemSchema, 404: problemSchema };
const tags = ['messages'];

const toPublicBranch = (b: { conversationId: string; leafId: string | null; data: MessageView[]; nextCursor?: string | null }) => ({ ...b, data: b.data.map(toPublicMessage) });

/** Reading messages, switching branches and feedback. API keys need the `chat` scope. */
export function messagesRoutes(app: App, { services, guards }: RouteContext<'messages'>) {
  const { messages } = services;
  const onRequest = guards.user({ scope: 'chat' });

  app.get('/conversations/:id/messages', {
    schema: {
      tags,
      summary: 'The messages of a branch, first to last',
      description:
        'By default the branch the conversation is showing (ending at its `currentLeafId`); `leafId` picks another. ' +
        'Each message lists its `siblingIds` (alternatives with the same parent) so a UI can offer to switch. ' +
        'With `limit`, a page of the newest messages, read from the leaf back (its cost follows the page, not the branch); `nextCursor` pages back towards the first message.',
      params: conversationParams,
      querystring: branchQuery,
      response: { 200: branchSchema, ...problems },
    },
    onRequest,
    handler: async (request) => {
      const { leafId, limit, cursor } = request.query;
      return toPublicBranch(await messages.branch(principal(request).userId, request.params.id, leafId, { limit, cursor }));
    },
  });

  app.get('/conversations/:id/messages/:messageId', {
    schema: { tags, summary: 'One message', params: messageParams, response: { 200: messageSchema, ...problems } },
    onRequest,
    handler: async (request) => toPublicMessage(await messages.get(principal(request).userId, request.params.id, request.params.messageId)),
  });

  app.post('/conversations/:id/messages/:messageId/select', {
    schema: {
      tags,
      summary: 'Switch to the branch through a message',
      description: 'The current leaf becomes the newest message below it (following the newest reply at each step). Returns that branch.',
      params: messageParams,
      response: { 200: branchSchema, ...problems },
    },
    onRequest,
    handler: async (request) => toPublicBranch(await messages.selectBranch(principal(request).userId, request.params.id, request.params.messageId)),
  });

  app.put('/conversations/:id/messages/:messageId/feedback', {
    schema: {
      tags,
      summary: 'Rate an assistant message',
      description: 'Replaces any earlier rating of the message.',
      params: messageParams,
      body: feedbackBody,
      response: { 200: feedbackSchema, ...problems },
    },
    onRequest,
    handler: async (request) => {
      const { id, messageId } = request.params;
      return toPublicFeedback(await messages.setFeedback(principal(request).userId, id, messageId, request.body));
    },
  });

  app.delete('/conversations/:id/messages/:messageId/feedback', {
    schema: { tags, summary: 'Remove your rating of a message', params: messageParams, response: { 204: z.null(), ...problems } },
    onRequest,
    handler: async (request, reply) => {
      await messages.deleteFeedback(principal(request).userId, request.params.id, request.params.messageId);
      return reply.status(204).send(null);
    },
  });
}
