import type { FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { AppError, NotFound, ValidationError } from '../../errors.ts';
import { principal } from '../../http/guards.ts';
import { drained, takeOverForEvents } from '../../http/sse.ts';
import type { App } from '../../http/types.ts';
import type { RouteContext } from '../module.ts';
import { gatewayCall, resolveChain } from './gateway-call.ts';
import { openAiErrorHandler } from './gateway-routes.ts';
import {
  checkSupported,
  failure,
  functionCallItemOf,
  incompleteReason,
  inputItems,
  inputTokensBody,
  MAX_ID_LENGTH,
  messageItemOf,
  newId,
  outputText,
  promptOf,
  responseBody,
  responseObject,
  responsesUsage,
  toChatRequest,
  type Item,
  type ResponseBody,
  type ResponseState,
} from './responses-format.ts';
import { inputItemsQuery, itemPage, listedItems } from './responses-items.ts';
import type { ChatEvent } from './types.ts';

type Emit = (type: string, payload: Record<string, unknown>) => void;

/**
 * OpenAI's Responses API over every configured provider: `POST /v1/responses`
 * runs through the same chain resolution, token limits, budgets, metering
 * and fallback as `/v1/chat/completions`, and Parley keeps each stored
 * response (its own turn, linked to the one it continues) so
 * `previous_response_id` continues it.
 * Errors are OpenAI-shaped, as on the rest of the gateway.
 */
export function responsesRoutes(app: App, ctx: RouteContext<'ai' | 'limits' | 'responses' | 'safety'>) {
  const { guards } = ctx;
  const { ai, limits, responses: store } = ctx.services;
  const params = z.object({ id: z.string().min(1).max(MAX_ID_LENGTH) });

  app.post('/responses', {
    schema: {
      tags: ['openai-compatible'],
      summary: 'Create a model response (OpenAI Responses API)',
      description:
        '`model` is a Parley id, a bare model name or a comma-separated fallback chain, as on `/v1/chat/completions`, served by any configured provider. ' +
        'Text and image input, function tools and `previous_response_id` (kept by Parley for 30 days; `store: false` keeps nothing). ' +
        'With `stream: true`: Server-Sent Events `response.created` … `response.completed`. `text.format` `json_object` or `json_schema` asks for JSON output. Built-in tools and background mode are refused (400).',
      body: responseBody,
    },
    bodyLimit: ctx.config.gatewayBodyLimit,
    onRequest: guards.user({ scope: 'chat' }),
    errorHandler: openAiErrorHandler,
    handler: async (request, reply) => {
      const body = request.body;
      checkSupported(body);
      const chain = resolveChain(ai, body.model);
      const caller = principal(request);
      const earlier = body.previous_response_id ? await previousItems(body.previous_response_id, caller.userId) : [];
      const own = inputItems(body);
      const items = [...earlier, ...own];
      const chatRequest = toChatRequest(body, items, earlier.length);
      const { signal, meter } = await gatewayCall(request, reply, ctx.services, chatRequest.messages);
      // Metering and budgets happen inside streamChat, once per call, however it ends.
      const events = ai.streamChat({ ...chatRequest, chain, signal, meter, whole: !body.stream });
      const state: ResponseState = {
        id: newId('resp'),
        createdAt: Math.floor(Date.now() / 1000),
        completedAt: null,
        status: 'in_progress',
        model: chain[0]!,
        output: [],
        usage: null,
        error: null,
        incompleteReason: null,
        previousResponseId: body.previous_response_id ?? null,
        store: body.store ?? true,
      };
      const save = async () => {
        if (!state.store) return;
        const { output, ...rest } = responseObject(state, body);
        await store.save(
          {
            id: state.id,
            userId: caller.userId,
            apiKeyId: caller.apiKeyId ?? null,
            model: state.model,
            status: state.status,
            previousResponseId: state.previousResponseId,
            instructions: body.instructions ?? null,
            output,
            response: rest,
            createdAt: new Date(state.createdAt * 1000),
          },
          { own, earlier },
        );
      };
      if (body.stream) return streamResponse(request, reply, events, { state, body, save });
      const builder = outputBuilder(state, () => {});
      for await (const e of events) builder.take(e);
      if (state.status === 'in_progress') throw new AppError(502, 'upstream_failed', 'Upstream failed', 'The provider ended without finishing');
      await save();
      return responseObject(state, body);
    },
  });

  app.get('/responses/:id', {
    schema: {
      tags: ['openai-compatible'],
      summary: 'A stored response (OpenAI Responses API)',
      description: "The caller's own responses only; another user's id is a 404, as is one made with `store: false` or older than 30 days.",
      params,
      querystring: z.looseObject({ stream: z.enum(['true', 'false']).optional() }),
    },
    onRequest: guards.user({ scope: 'chat' }),
    errorHandler: openAiErrorHandler,
    handler: async (request) => {
      if (request.query.stream === 'true') throw new AppError(400, 'unsupported_parameter', 'Validation failed', 'Replaying a response as a stream is not supported by Parley', { extra: { param: 'stream' } });
      const row = await store.find(request.params.id, principal(request).userId);
      if (!row) throw responseNotFound(request.params.id);
      return { ...row.response, output: row.output };
    },
  });

  app.delete('/responses/:id', {
    schema: { tags: ['openai-compatible'], summary: 'Delete a stored response (OpenAI Responses API)', params },
    onRequest: guards.user({ scope: 'chat' }),
    errorHandler: openAiErrorHandler,
    handler: async (request) => {
      if (!(await store.remove(request.params.id, principal(request).userId))) throw responseNotFound(request.params.id);
      return { id: request.params.id, object: 'response', deleted: true };
    },
  });

  app.get('/responses/:id/input_items', {
    schema: {
      tags: ['openai-compatible'],
      summary: "A stored response's input items (OpenAI Responses API)",
      description:
        'What the model was given as input: the earlier turns of its `previous_response_id` chain expanded, then its own input, as a cursor-paginated list ' +
        '(`order` `desc` by default, `limit` 1–100, default 20, `after` an item id). Items sent without an id have one derived from the response and their place, the same on every call. ' +
        '`include` is accepted and ignored. 404 as for `GET /v1/responses/{id}`.',
      params,
      querystring: inputItemsQuery,
    },
    onRequest: guards.user({ scope: 'chat' }),
    errorHandler: openAiErrorHandler,
    handler: async (request) => {
      const { id } = request.params;
      const items = await store.input(id, principal(request).userId);
      if (!items) throw responseNotFound(id);
      return itemPage(listedItems(id, items), request.query);
    },
  });

  app.post('/responses/input_tokens', {
    schema: {
      tags: ['openai-compatible'],
      summary: 'Count the input tokens of a response request (OpenAI Responses API)',
      description:
        'The tokens the model would be given for this `POST /v1/responses` body (`previous_response_id` expanded), counted as `POST /v1/messages/count_tokens` counts them: ' +
        "with the OpenAI tokenizer that fits the model (the chain's first; `DEFAULT_MODEL` when `model` is left out), tool definitions and a `text.format` schema as their JSON text. No model is called; not metered.",
      body: inputTokensBody,
      response: { 200: z.object({ object: z.literal('response.input_tokens'), input_tokens: z.number().int() }) },
    },
    bodyLimit: ctx.config.gatewayBodyLimit,
    onRequest: guards.user({ scope: 'chat' }),
    errorHandler: openAiErrorHandler,
    handler: async (request) => {
      const body = request.body;
      checkSupported(body);
      const name = body.model ?? ai.defaultModel;
      if (!name) throw ValidationError('model is required: this deployment has no default model', 'missing_required_parameter', { param: 'model' });
      const model = ai.model(resolveChain(ai, name)[0] ?? '');
      if (!model) throw NotFound(`Model "${name}"`, 'model_not_found');
      const earlier = body.previous_response_id ? await previousItems(body.previous_response_id, principal(request).userId) : [];
      const { messages, tools } = promptOf(body, [...earlier, ...inputItems(body)], earlier.length);
      // As /v1/messages/count_tokens counts: the texts, tools and output schema as one task, on a thread when they are long.
      const extra = (tools ?? []).map((t) => JSON.stringify(t));
      const format = body.text?.format;
      if (format?.type === 'json_schema') extra.push(JSON.stringify(format.schema));
      return { object: 'response.input_tokens' as const, input_tokens: await ai.tokens.countPrompt(model.model, messages, extra) };
    },
  });

  async function previousItems(id: string, userId: string): Promise<Item[]> {
    // Its whole input (the turns before it) and its output; its instructions are not carried over, as OpenAI does.
    const conversation = await store.conversation(id, userId);
    if (!conversation) throw new AppError(404, 'previous_response_not_found', 'Not found', `Previous response with id '${id}' not found.`, { extra: { param: 'previous_response_id' } });
    return conversation;
  }
}

const responseNotFound = (id: string) => NotFound(`Response with id '${id}'`, 'not_found');

/**
 * Turns ChatEvents into output items, telling `emit` each streaming event on
 * the way: a message item holds the text, each tool call becomes a
 * function_call item.
 */
function outputBuilder(state: ResponseState, emit: Emit) {
  let message: { id: string; index: number; text: string } | undefined;
  const closeMessage = (status: 'completed' | 'incomplete') => {
    if (!message) return;
    const { id, index, text } = message;
    const item = messageItemOf(id, text, status);
    emit('response.output_text.done', { item_id: id, output_index: index, content_index: 0, text, logprobs: [] });
    emit('response.content_part.done', { item_id: id, output_index: index, content_index: 0, part: outputText(text) });
    emit('response.output_item.done', { output_index: index, item });
    state.output.push(item);
    message = undefined;
  };
  return {
    take(e: ChatEvent) {
      if (e.type === 'attempt') state.model = `${e.provider}:${e.model}`;
      else if (e.type === 'delta') {
        if (!message) {
          message = { id: newId('msg'), index: state.output.length, text: '' };
          emit('response.output_item.added', { output_index: message.index, item: messageItemOf(message.id, '', 'in_progress') });
          emit('response.content_part.added', { item_id: message.id, output_index: message.index, content_index: 0, part: outputText('') });
        }
        message.text += e.text;
        emit('response.output_text.delta', { item_id: message.id, output_index: message.index, content_index: 0, delta: e.text, logprobs: [] });
      } else if (e.type === 'tool_call') {
        closeMessage('completed');
        const id = newId('fc');
        const index = state.output.length;
        emit('response.output_item.added', { output_index: index, item: functionCallItemOf(id, e.call, 'in_progress') });
        emit('response.function_call_arguments.delta', { item_id: id, output_index: index, delta: e.call.arguments });
        emit('response.function_call_arguments.done', { item_id: id, output_index: index, name: e.call.name, arguments: e.call.arguments });
        const item = functionCallItemOf(id, e.call, 'completed');
        emit('response.output_item.done', { output_index: index, item });
        state.output.push(item);
      } else if (e.type === 'finish') {
        const reason = incompleteReason(e.finishReason);
        closeMessage(reason ? 'incomplete' : 'completed');
        state.model = `${e.provider}:${e.model}`;
        state.usage = responsesUsage(e.usage);
        state.status = reason ? 'incomplete' : 'completed';
        if (!reason) state.completedAt = Math.floor(Date.now() / 1000);
        state.incompleteReason = reason;
      }
    },
    /** The stream broke: what was said so far stays, as an incomplete message, in a failed response. */
    fail(err: unknown) {
      if (message) state.output.push(messageItemOf(message.id, message.text, 'incomplete'));
      message = undefined;
      state.status = 'failed';
      state.error = failure(err);
    },
  };
}

/**
 * Streams the Responses events. As on `/v1/chat/completions`, the first
 * output is awaited before anything is sent, so a chain that fails before its
 * first token gets a real HTTP error status; a failure after that ends the
 * stream with `response.failed`. Each event carries `sequence_number`.
 */
async function streamResponse(
  request: FastifyRequest,
  reply: FastifyReply,
  events: AsyncIterable<ChatEvent>,
  opts: { state: ResponseState; body: ResponseBody; save: () => Promise<void> },
) {
  const { state, body } = opts;
  const iterator = events[Symbol.asyncIterator]();
  const pending: ChatEvent[] = [];
  const nextOutput = async () => {
    for (;;) {
      const step = await iterator.next();
      if (step.done) return undefined;
      const e = step.value;
      if (e.type === 'attempt_failed') continue;
      if (e.type !== 'attempt') return e;
      pending.push(e);
    }
  };
  let next: ChatEvent | undefined;
  try {
    next = await nextOutput();
  } catch (err) {
    await iterator.return?.();
    throw err;
  }

  const res = takeOverForEvents(request, reply);
  let sequence = 0;
  const emit: Emit = (type, payload) => {
    if (!res.destroyed) res.write(`event: ${type}\ndata: ${JSON.stringify({ type, sequence_number: sequence++, ...payload })}\n\n`);
  };
  const builder = outputBuilder(state, emit);
  for (const e of pending) builder.take(e);
  emit('response.created', { response: responseObject(state, body) });
  emit('response.in_progress', { response: responseObject(state, body) });
  try {
    while (next) {
      builder.take(next);
      if (res.writableNeedDrain) await drained(res);
      if (res.destroyed) return;
      next = await nextOutput();
    }
    if (state.status === 'in_progress') throw new AppError(502, 'upstream_failed', 'Upstream failed', 'The provider ended without finishing');
    await opts.save();
    emit(state.status === 'incomplete' ? 'response.incomplete' : 'response.completed', { response: responseObject(state, body) });
    res.end();
  } catch (err) {
    if (res.destroyed) return;
    if (!(err instanceof AppError)) request.log.error({ err }, 'responses stream failed');
    builder.fail(err);
    try {
      await opts.save();
    } catch (saveErr) {
      request.log.error({ err: saveErr }, 'storing a failed response failed');
    }
    emit('response.failed', { response: responseObject(state, body) });
    res.end();
  } finally {
    // The client left early: stop the generation (and its bill); a finished one has nothing left to stop.
    await iterator.return?.();
  }
}
