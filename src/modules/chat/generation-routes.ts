import type { FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { AppError } from '../../errors.ts';
import { principal } from '../../http/guards.ts';
import { idempotencyHeaders, idempotencyOf } from '../../http/idempotency.ts';
import { problemSchema } from '../../http/problem.ts';
import { openEventStream, resumeOffset, wantsEventStream } from '../../http/sse.ts';
import type { App } from '../../http/types.ts';
import type { RouteContext } from '../module.ts';
import { conversationParams, messageParams, messageSchema } from './contracts.ts';
import { approvalBody, eventStream, postMessageBody, regenerateBody, streamHeaders, streamQuery, toolCallParams } from './generation-contracts.ts';
import { toFrame } from './generation-events.ts';
import { toPublicMessage, type MessageView } from './messages.ts';

const problems = { 400: problemSchema, 401: problemSchema, 403: problemSchema, 404: problemSchema, 409: problemSchema, 422: problemSchema, 502: problemSchema, 503: problemSchema };
const tags = ['messages'];
const answers = {
  200: eventStream,
  201: { description: 'The finished answer (without `Accept: text/event-stream`)', content: { 'application/json': { schema: messageSchema } } },
  202: {
    description: 'The answer paused: a tool call waits for approval (without `Accept: text/event-stream`). Still `streaming`, finishReason `awaiting_approval`; the pending calls are `tool` messages in its branch',
    content: { 'application/json': { schema: messageSchema } },
  },
};
const ANSWER_DESCRIPTION =
  'With `Accept: text/event-stream` the answer streams as it is generated (see the 200 response); otherwise the request waits and returns the finished assistant message (201). ' +
  'Either way the answer is generated to the end even if the client goes away, and can be followed again through `/stream`. ' +
  'A retry with the same `Idempotency-Key` and body returns (or re-streams) the same answer without generating it twice. ' +
  'When the stream store (Redis, in a distributed setup) cannot be reached, the request is refused with 503 `dependency_unavailable` and a `Retry-After`, before anything is stored.';

/** Posting messages and following, resuming and stopping their answers. API keys need the `chat` scope. */
export function generationRoutes(app: App, { services, guards, idempotency }: RouteContext<'generation' | 'limits'>) {
  const { generation, limits } = services;
  const onRequest = guards.user({ scope: 'chat' });
  // Shutting down: stop local generations and let every open event stream end, so close() is not held up.
  const closing = new AbortController();
  app.addHook('preClose', async () => {
    closing.abort();
    await generation.shutdown();
  });

  async function stream(request: FastifyRequest, reply: FastifyReply, message: MessageView, from: number) {
    const sse = openEventStream(request, reply);
    try {
      for await (const e of generation.events(message, from, AbortSignal.any([sse.signal, closing.signal]))) await sse.send(toFrame(e));
    } catch (err) {
      request.log.error({ err }, 'event stream failed');
      await sse.send({ event: 'error', data: { code: 'internal_error', message: `The stream broke; resume it (request id ${request.id})`, messageId: message.id } });
    } finally {
      sse.close();
    }
    return reply;
  }

  /** The answer as the client asked for it: an event stream from the start, or the finished message. */
  async function answer(request: FastifyRequest, reply: FastifyReply, conversationId: string, messageId: string) {
    const message = await generation.assistantOf(principal(request).userId, conversationId, messageId);
    if (wantsEventStream(request)) return stream(request, reply, message, 0);
    // Stop following once the client has gone away (the answer itself carries on).
    const gone = new AbortController();
    reply.raw.on('close', () => gone.abort());
    // Gone already, while the answer was being started.
    if (reply.raw.destroyed) gone.abort();
    const outcome = await generation.outcome(message, AbortSignal.any([gone.signal, closing.signal]));
    if (!outcome) {
      if (closing.signal.aborted) throw new AppError(503, 'shutting_down', 'Service unavailable', 'The server is shutting down; follow the answer through its /stream');
      // The stream ended with no outcome: the generation could not record one (its database write failed).
      throw new AppError(502, 'outcome_unknown', 'The answer failed', 'The answer ended without an outcome; read the message again later or regenerate it', { extra: { messageId } });
    }
    if (outcome.type === 'error') throw new AppError(502, outcome.code, 'The answer failed', outcome.message, { extra: { messageId: outcome.messageId } });
    // Paused for approvals: the answer as it stands (its pending calls are in the branch); the decisions carry it on.
    if (outcome.type === 'tool.approval_required') return reply.status(202).send(toPublicMessage(await generation.assistantOf(principal(request).userId, conversationId, messageId)));
    return reply.status(201).send(outcome.message);
  }

  app.post('/conversations/:id/messages', {
    schema: {
      tags,
      summary: 'Send a message and get the answer',
      description: ANSWER_DESCRIPTION,
      params: conversationParams,
      headers: idempotencyHeaders,
      body: postMessageBody,
      response: { ...answers, ...problems },
    },
    onRequest,
    handler: async (request, reply) => {
      const userId = principal(request).userId;
      const { id } = request.params;
      await limits.checkTokens(principal(request));
      const { resourceId } = await idempotency.once(idempotencyOf(request, userId, { params: request.params, body: request.body }), async () => {
        return (await generation.start(userId, id, request.body, principal(request))).assistantMessage.id;
      });
      return answer(request, reply, id, resourceId);
    },
  });

  app.post('/conversations/:id/messages/:messageId/regenerate', {
    schema: {
      tags,
      summary: 'Answer again',
      description: `A new answer beside an assistant message (or below a user message): a sibling branch that becomes current. ${ANSWER_DESCRIPTION}`,
      params: messageParams,
      headers: idempotencyHeaders,
      body: regenerateBody,
      response: { ...answers, ...problems },
    },
    onRequest,
    handler: async (request, reply) => {
      const userId = principal(request).userId;
      const { id, messageId } = request.params;
      await limits.checkTokens(principal(request));
      const { resourceId } = await idempotency.once(idempotencyOf(request, userId, { params: request.params, body: request.body }), async () => {
        return (await generation.regenerate(userId, id, messageId, request.body, principal(request))).assistantMessage.id;
      });
      return answer(request, reply, id, resourceId);
    },
  });

  app.get('/conversations/:id/messages/:messageId/stream', {
    schema: {
      tags,
      summary: "Follow an answer's events",
      description:
        'Replays the answer from `offset` (or after `Last-Event-ID`) and follows it live until it ends, from any instance. ' +
        'Once the stored events have expired, a finished answer is sent as its final event alone. ' +
        'Resumed past the last event of a finished answer (the client has it all): 204, which tells an EventSource to stop reconnecting.',
      params: messageParams,
      querystring: streamQuery,
      headers: streamHeaders,
      response: { 200: eventStream, 204: z.null(), ...problems },
    },
    onRequest,
    handler: async (request, reply) => {
      const message = await generation.assistantOf(principal(request).userId, request.params.id, request.params.messageId);
      generation.assertFollowable();
      const from = resumeOffset(request, request.query.offset);
      if (await generation.finishedBefore(message, from)) return reply.status(204).send(null);
      return stream(request, reply, message, from);
    },
  });

  app.post('/conversations/:id/messages/:messageId/tool-calls/:callId/approval', {
    schema: {
      tags,
      summary: 'Approve or deny a tool call',
      description:
        'Decides on a call that waits for approval (`tool.approval_required`). Once every waiting call of the step is decided, the answer goes on: ' +
        'approved calls run, denied ones are reported to the model as denied, and the events follow on the same stream. Returns the answer as it stands.',
      params: toolCallParams,
      body: approvalBody,
      response: { 200: messageSchema, ...problems },
    },
    onRequest,
    handler: async (request) => {
      const { id, messageId, callId } = request.params;
      return toPublicMessage(await generation.decide(principal(request).userId, id, messageId, callId, request.body.approve, principal(request)));
    },
  });

  app.post('/conversations/:id/messages/:messageId/cancel', {
    schema: {
      tags,
      summary: 'Stop an answer',
      description: 'Stops the generation wherever it runs; the text so far is kept and the message becomes `cancelled`. A finished message is returned unchanged.',
      params: messageParams,
      response: { 200: messageSchema, ...problems },
    },
    onRequest,
    handler: async (request) => toPublicMessage(await generation.cancel(principal(request).userId, request.params.id, request.params.messageId)),
  });
}
