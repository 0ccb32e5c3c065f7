import { randomUUID } from 'node:crypto';
import type { FastifyError, FastifyReply, FastifyRequest, onRequestAsyncHookHandler } from 'fastify';
import { hasZodFastifySchemaValidationErrors } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { AppError, NotFound } from '../../errors.ts';
import { clientErrorCode, databaseFailure } from '../../http/problem.ts';
import { drained, takeOverForEvents } from '../../http/sse.ts';
import type { App } from '../../http/types.ts';
import type { RouteContext } from '../module.ts';
import { gatewayCall, resolveChain } from './gateway-call.ts';
import {
  anthropicError,
  anthropicUsage,
  checkToolUse,
  countTokensBody,
  createStopScanner,
  messageResponse,
  messagesBody,
  parseInput,
  stopReason,
  toChatRequest,
  toolUseContent,
  type ContentBlock,
  type StopReason,
} from './messages-format.ts';
import type { TokenCounter } from './token-counter.ts';
import type { ChatEvent, ChatRequest, ToolCall, Usage } from './types.ts';

/**
 * Anthropic's Messages API, so a client built for Claude (the official SDKs,
 * coding agents) can use Parley as its base URL with a Parley API key, and be
 * served by any configured provider through Parley's fallback, limits and
 * accounting. Errors here are Anthropic-shaped, not problem+json.
 */
export function messagesRoutes(app: App, ctx: RouteContext<'ai' | 'limits' | 'safety'>) {
  const ai = ctx.services.ai;
  const auth = [credentialFromApiKeyHeader, ctx.guards.user({ scope: 'chat' })];
  const headers = z.looseObject({
    'x-api-key': z.string().optional().describe('A Parley API key (or access token), as the Anthropic SDKs send it; `Authorization: Bearer` works too.'),
    'anthropic-version': z.string().optional().describe('Accepted and not required; every value is answered in the 2023-06-01 format.'),
  });

  app.post('/messages', {
    schema: {
      tags: ['anthropic-compatible'],
      summary: 'Create a message (Anthropic Messages format)',
      description:
        '`model` is a Parley id (`openai:gpt-4o-mini`), a bare model name from the catalog, or a comma-separated fallback chain; any configured provider ' +
        'can answer. With `stream: true` the answer is Anthropic\'s Server-Sent Events (`message_start` … `message_stop`). The response `model` names the ' +
        'link that answered. `stop_sequences` are applied by Parley to the output; `top_p` and `top_k` are passed on to providers that take them; ' +
        '`output_config.format` (or the beta\'s `output_format`) asks any provider for JSON matching its schema, answered as the text block. ' +
        '`thinking` and `anthropic-beta` are accepted and ignored. A body may be up to `GATEWAY_BODY_LIMIT_BYTES` (32 MiB by default).',
      headers,
      body: messagesBody,
      response: { 200: messageResponse },
    },
    bodyLimit: ctx.config.gatewayBodyLimit,
    onRequest: auth,
    errorHandler: anthropicErrorHandler,
    handler: async (request, reply) => {
      const body = request.body;
      const chain = resolveChain(ai, body.model);
      checkToolUse(body);
      const asked = toChatRequest(body);
      const { signal, meter } = await gatewayCall(request, reply, ctx.services, asked.messages);
      // Not streaming, the answer is asked for whole where it can be; not with stop sequences, which Parley applies as the text comes (and stops the call there).
      const whole = !body.stream && !body.stop_sequences?.length;
      const chatRequest: ChatRequest = { ...asked, chain, signal, meter, whole };
      // Metering and budgets happen inside streamChat (the `meter` above), as for every model call.
      const output = readOutput(ai.streamChat(chatRequest), chatRequest, body.stop_sequences ?? [], ai.tokens);
      const id = `msg_${randomUUID().replaceAll('-', '')}`;
      reply.header('request-id', request.id);
      if (body.stream) return streamMessage(request, reply, output, { id, model: body.model, messages: chatRequest.messages, tokens: ai.tokens });
      return complete(output, id);
    },
  });

  app.post('/messages/count_tokens', {
    schema: {
      tags: ['anthropic-compatible'],
      summary: 'Count the input tokens of a message (Anthropic Messages format)',
      description:
        'Counted with the OpenAI tokenizer that fits the model (o200k_base, or cl100k_base for older GPT models): exact for OpenAI models, an estimate for others. ' +
        'Tool definitions, and an `output_config.format` schema (for which Anthropic adds a system prompt), count as their JSON text. Not metered.',
      headers,
      body: countTokensBody,
      response: { 200: z.object({ input_tokens: z.number().int() }) },
    },
    bodyLimit: ctx.config.gatewayBodyLimit,
    onRequest: auth,
    errorHandler: anthropicErrorHandler,
    handler: async (request, reply) => {
      const body = request.body;
      // Counted as the chain's first model would count it.
      const model = ai.model(resolveChain(ai, body.model)[0] ?? '');
      if (!model) throw NotFound(`Model "${body.model}"`, 'model_not_found');
      const { messages, tools, responseFormat } = toChatRequest(body);
      // The prompt's texts, tools and output schema counted as one task: on a thread when they are long (a body may hold 32 MiB).
      const extra = (tools ?? []).map((t) => JSON.stringify(t));
      if (responseFormat?.schema) extra.push(JSON.stringify(responseFormat.schema));
      const n = await ai.tokens.countPrompt(model.model, messages, extra);
      reply.header('request-id', request.id);
      return { input_tokens: n };
    },
  });
}

/**
 * The Anthropic SDKs send the key as `x-api-key`: on these routes it is taken
 * as the bearer credential, so one code path verifies every key.
 */
const credentialFromApiKeyHeader: onRequestAsyncHookHandler = async (request) => {
  const key = request.headers['x-api-key'];
  if (typeof key === 'string' && key && !request.headers.authorization) request.headers.authorization = `Bearer ${key}`;
};

/** The answer as Anthropic sees it: text, tool calls, and how it ended. */
type Output =
  | { type: 'attempt'; provider: string; model: string }
  | { type: 'text'; text: string }
  | { type: 'tool_use'; call: ToolCall }
  | { type: 'end'; model: string; stopReason: StopReason; stopSequence: string | null; usage: Usage };

/**
 * Parley's chat events as Anthropic output, with `stop_sequences` applied.
 * When a sequence matches, reading stops, which stops the upstream
 * generation; streamChat then meters the call as cancelled, on the tokens
 * counted so far, and the answer reports the same count.
 */
async function* readOutput(events: AsyncIterable<ChatEvent>, request: ChatRequest, stops: string[], tokens: Pick<TokenCounter, 'usage'>): AsyncGenerator<Output> {
  const scanner = createStopScanner(stops);
  let answering = { provider: '', model: '' };
  let received = '';
  let madeToolCalls = false;
  for await (const e of events) {
    if (e.type === 'attempt') {
      answering = { provider: e.provider, model: e.model };
      yield { type: 'attempt', provider: e.provider, model: e.model };
    } else if (e.type === 'delta') {
      if (stops.length) received += e.text;
      const { text, stopped } = scanner.push(e.text);
      if (text) yield { type: 'text', text };
      if (stopped !== undefined) {
        // Counted on a thread when long, as streamChat counts the call it meters.
        const usage = await tokens.usage(answering.model, request.messages, received);
        yield { type: 'end', model: `${answering.provider}:${answering.model}`, stopReason: 'stop_sequence', stopSequence: stopped, usage };
        return;
      }
    } else if (e.type === 'tool_call') {
      const rest = scanner.flush();
      if (rest) yield { type: 'text', text: rest };
      madeToolCalls = true;
      yield { type: 'tool_use', call: e.call };
    } else if (e.type === 'finish') {
      const rest = scanner.flush();
      if (rest) yield { type: 'text', text: rest };
      yield { type: 'end', model: `${e.provider}:${e.model}`, stopReason: stopReason(e.finishReason, madeToolCalls), stopSequence: null, usage: e.usage };
    }
  }
}

async function complete(output: AsyncIterable<Output>, id: string) {
  const content: ContentBlock[] = [];
  let end: Extract<Output, { type: 'end' }> | undefined;
  for await (const o of output) {
    if (o.type === 'text') {
      const last = content.at(-1);
      if (last?.type === 'text') last.text += o.text;
      else content.push({ type: 'text', text: o.text });
    } else if (o.type === 'tool_use') content.push(toolUseContent(o.call));
    else if (o.type === 'end') end = o;
  }
  if (!end) throw new AppError(502, 'upstream_failed', 'Upstream failed', 'The provider ended without finishing');
  return { id, type: 'message' as const, role: 'assistant' as const, model: end.model, content, stop_reason: end.stopReason, stop_sequence: end.stopSequence, usage: anthropicUsage(end.usage) };
}

/**
 * Streams Anthropic's events. As on the OpenAI-compatible route, the first
 * output is awaited before anything is sent, so a chain that fails before its
 * first token gets a real HTTP error status; a later failure can only be an
 * `error` event, which the Anthropic SDKs raise as an APIError.
 */
async function streamMessage(
  request: FastifyRequest,
  reply: FastifyReply,
  output: AsyncGenerator<Output>,
  opts: { id: string; model: string; messages: ChatRequest['messages']; tokens: Pick<TokenCounter, 'countPrompt'> },
) {
  let model = opts.model;
  let modelName = opts.model;
  const nextOutput = async () => {
    for (;;) {
      const step = await output.next();
      if (step.done) return undefined;
      if (step.value.type !== 'attempt') return step.value;
      model = `${step.value.provider}:${step.value.model}`;
      modelName = step.value.model;
    }
  };
  let next: Output | undefined;
  let estimate: number;
  try {
    next = await nextOutput();
    // Anthropic reports the prompt's tokens at the start (the provider's own count comes with message_delta): counted
    // before the answer starts, on a thread when the prompt is long (every streamed call counts it).
    estimate = await opts.tokens.countPrompt(modelName, opts.messages);
  } catch (err) {
    await output.return(undefined);
    throw err;
  }

  const res = takeOverForEvents(request, reply);
  let index = -1;
  let open: 'text' | undefined;
  let pinged = false;
  const startBlock = (block: Record<string, unknown>) => {
    index++;
    res.write(event('content_block_start', { index, content_block: block }));
    if (!pinged) res.write(event('ping', {}));
    pinged = true;
  };
  const closeBlock = () => {
    if (open) res.write(event('content_block_stop', { index }));
    open = undefined;
  };
  try {
    const message = { id: opts.id, type: 'message', role: 'assistant', model, content: [], stop_reason: null, stop_sequence: null };
    res.write(event('message_start', { message: { ...message, usage: { input_tokens: estimate, output_tokens: 0, cache_creation_input_tokens: null, cache_read_input_tokens: 0 } } }));
    while (next) {
      const o = next;
      if (o.type === 'text') {
        if (open !== 'text') {
          closeBlock();
          startBlock({ type: 'text', text: '' });
          open = 'text';
        }
        res.write(event('content_block_delta', { index, delta: { type: 'text_delta', text: o.text } }));
      } else if (o.type === 'tool_use') {
        closeBlock();
        startBlock({ type: 'tool_use', id: o.call.id, name: o.call.name, input: {} });
        res.write(event('content_block_delta', { index, delta: { type: 'input_json_delta', partial_json: JSON.stringify(parseInput(o.call.arguments)) } }));
        res.write(event('content_block_stop', { index }));
      } else if (o.type === 'end') {
        closeBlock();
        res.write(event('message_delta', { delta: { stop_reason: o.stopReason, stop_sequence: o.stopSequence }, usage: anthropicUsage(o.usage) }));
        res.write(event('message_stop', {}));
      }
      if (res.writableNeedDrain) await drained(res);
      if (res.destroyed) return;
      next = await nextOutput();
    }
    res.end();
  } catch (err) {
    const status = err instanceof AppError ? err.status : 500;
    if (!(err instanceof AppError) && !res.destroyed) request.log.error({ err }, 'messages stream failed');
    const message = err instanceof AppError ? err.message : 'The stream failed on our side';
    if (!res.destroyed) res.end(event('error', anthropicError(status, message, err instanceof AppError ? err.code : 'internal_error', request.id)));
  } finally {
    // The client left early: stop the generation (and its bill); a finished one has nothing left to stop.
    await output.return(undefined);
  }
}

const event = (type: string, data: Record<string, unknown>) => `event: ${type}\ndata: ${JSON.stringify({ type, ...data })}\n\n`;

/** Every error on these routes, auth and validation included, in Anthropic's shape. */
export function anthropicErrorHandler(raw: FastifyError | AppError | Error, request: FastifyRequest, reply: FastifyReply) {
  const error = databaseFailure(raw, request) ?? raw;
  reply.header('request-id', request.id);
  // The client hung up before the first token, which aborted the upstream call: nobody is left to answer.
  if (error.name === 'AbortError' && (reply.raw.destroyed || request.raw.socket?.destroyed)) {
    request.log.info('client closed the request before the first token');
    return reply.status(499).send(anthropicError(499, 'Client closed the request', 'client_closed_request', request.id));
  }
  if (error instanceof AppError) {
    reply.headers(error.headers);
    return reply.status(error.status).send(anthropicError(error.status, error.message, error.code, request.id));
  }
  if (hasZodFastifySchemaValidationErrors(error)) {
    const message = error.validation.map((v) => `${v.instancePath.slice(1).replaceAll('/', '.') || 'body'}: ${v.message}`).join('; ');
    return reply.status(400).send(anthropicError(400, message, 'validation_failed', request.id));
  }
  const status = (error as FastifyError).statusCode;
  if (status && status >= 400 && status < 500) return reply.status(status).send(anthropicError(status, error.message, clientErrorCode(error as FastifyError), request.id));
  request.log.error({ err: error }, 'unhandled error');
  return reply.status(500).send(anthropicError(500, `Something went wrong on our side. Quote request id ${request.id} when reporting it.`, 'internal_error', request.id));
}
