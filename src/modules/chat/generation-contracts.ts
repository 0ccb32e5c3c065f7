import { z } from 'zod';
import { optionalBody } from '../../http/pagination.ts';
import { modelId } from '../ai/index.ts';
import { messageContentInput } from './contracts.ts';

const answerModel = modelId.optional().describe("This answer only: try this model first, before the conversation's, the project's, your `defaultModel` preference and the server default");

export const postMessageBody = z
  .object({
    content: messageContentInput,
    parentId: z
      .uuid()
      .nullable()
      .optional()
      .describe("The message this one follows; default: the conversation's current leaf. To edit a message, send its parent (null for the first message): the edit starts a new branch. Not a message of a tool step (400 `parent_in_tool_step`)"),
    model: answerModel,
  })
  .strict();

export const regenerateBody = optionalBody(z.object({ model: answerModel }).strict());

export const streamQuery = z.object({
  offset: z.coerce
    .number()
    .int()
    .min(0)
    .max(1_000_000)
    .optional()
    .describe('The first event to send (its `id`); takes precedence over Last-Event-ID, which resumes after the event it names'),
});

export const toolCallParams = z.object({ id: z.uuid(), messageId: z.uuid(), callId: z.string().min(1).max(200).describe("The call's id, from `tool.call`") });

export const approvalBody = z.object({ approve: z.boolean().describe('true to run the call, false to tell the model it was denied') }).strict();

export const streamHeaders = z.looseObject({
  'last-event-id': z.string().max(20).optional().describe('The `id` of the last event received (EventSource sends it when reconnecting): the stream resumes after it'),
});

/** The generation's events, documented for OpenAPI; the body itself is a text/event-stream. */
export const EVENT_STREAM_DESCRIPTION = [
  'A `text/event-stream` of the generation, each event with `id:` = its offset (reconnect with `Last-Event-ID` or `?offset=`):',
  '- `message.created` `{conversationId, userMessageId, assistantMessageId}`',
  '- `delta` `{text}`: the next piece of the answer',
  '- `tool.call` `{id, name, arguments, needsApproval}`: the model called a tool (with tools, after each step\'s deltas)',
  '- `tool.result` `{id, name, status, result, error, durationMs}`: what the call gave back to the model (`ok`, `error`, `denied`, `cancelled`)',
  '- `tool.approval_required` `{messageId, calls}`: the answer waits until each of these calls is approved or denied; the stream stays open and goes on after',
  '- `message.completed` `{message}`: the stored answer with usage (tokens, cost, provider and model that answered, failed attempts); also when cancelled (`status: cancelled`)',
  '- `error` `{code, message, messageId}`: the answer failed (`stream_timeout`, `stream_interrupted`, `all_providers_failed`, …); its partial text is kept on the message',
  'The stream ends after `message.completed` or `error`.',
].join('\n');

export const eventStream = { description: EVENT_STREAM_DESCRIPTION, content: { 'text/event-stream': { schema: z.string() } } };
