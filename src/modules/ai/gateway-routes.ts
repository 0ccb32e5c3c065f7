import { randomUUID } from 'node:crypto';
import type { ServerResponse } from 'node:http';
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { hasZodFastifySchemaValidationErrors } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { AppError, NotFound } from '../../errors.ts';
import { clientErrorCode, databaseFailure } from '../../http/problem.ts';
import { drained, takeOverForEvents } from '../../http/sse.ts';
import type { App } from '../../http/types.ts';
import type { RouteContext } from '../module.ts';
import { gatewayCall, resolveChain } from './gateway-call.ts';
import {
  completionBody,
  openAiError,
  openAiFinishReason,
  openAiToolCalls,
  openAiUsage,
  relayedChunks,
  toChatRequest,
  type CompletionBody,
} from './gateway-format.ts';
import type { AiService } from './service.ts';
import type { ChatEvent, ChunkRelay, ToolCall } from './types.ts';

type Finish = Extract<ChatEvent, { type: 'finish' }>;

/**
 * OpenAI-compatible endpoints, so any OpenAI SDK can use Parley as its base
 * URL with a Parley API key (or access token), through Parley's providers,
 * fallback and accounting. Errors here are OpenAI-shaped, not problem+json:
 * that is what those SDKs parse.
 */
export function gatewayRoutes(app: App, ctx: RouteContext<'ai' | 'limits' | 'safety'>) {
  const { guards } = ctx;
  const ai = ctx.services.ai;
  const created = Math.floor(Date.now() / 1000);
  const modelObject = (id: string, provider: string) => ({ id, object: 'model' as const, created, owned_by: provider });
  const modelSchema = z.object({ id: z.string(), object: z.literal('model'), created: z.number().int(), owned_by: z.string() });

  app.get('/models', {
    schema: {
      tags: ['openai-compatible'],
      summary: 'List models (OpenAI format)',
      description: 'Ids are Parley model ids (`provider:model`). Parley\'s richer catalog, with prices and limits, is `GET /v1/ai/models`.',
      response: { 200: z.object({ object: z.literal('list'), data: z.array(modelSchema) }) },
    },
    onRequest: guards.user({ scope: 'models:read' }),
    errorHandler: openAiErrorHandler,
    handler: async () => ({ object: 'list' as const, data: ai.models().map((m) => modelObject(m.id, m.provider)) }),
  });

  // A wildcard: model names may hold slashes (`local:org/model`), as OpenAI's SDKs put them in the path.
  app.get('/models/*', {
    schema: {
      tags: ['openai-compatible'],
      summary: 'One model (OpenAI format)',
      description: 'A model `GET /v1/models` lists, by its id or a bare name the catalog knows; any other is 404 `model_not_found`, as OpenAI answers.',
      params: z.object({ '*': z.string() }),
      response: { 200: modelSchema },
    },
    onRequest: guards.user({ scope: 'models:read' }),
    errorHandler: openAiErrorHandler,
    handler: async (request) => {
      const name = request.params['*'];
      const id = ai.resolve(name);
      const found = id === undefined ? undefined : ai.models().find((m) => m.id === id);
      if (!found) throw NotFound(`Model "${name}"`, 'model_not_found');
      return modelObject(found.id, found.provider);
    },
  });

  app.post('/chat/completions', {
    schema: {
      tags: ['openai-compatible'],
      summary: 'Create a chat completion (OpenAI format)',
      description:
        '`model` is a Parley id (`anthropic:claude-sonnet-4-5`), a bare model name from the catalog (`gpt-4o-mini`), or a comma-separated fallback chain ' +
        '(`anthropic:claude-sonnet-4-5,openai:gpt-4o-mini`); `models` (OpenRouter-style) appends more fallbacks. With `stream: true` the answer is ' +
        'Server-Sent Events of `chat.completion.chunk`s ending in `[DONE]`. The response `model` names the link that answered.',
      body: completionBody,
    },
    bodyLimit: ctx.config.gatewayBodyLimit,
    onRequest: guards.user({ scope: 'chat' }),
    errorHandler: openAiErrorHandler,
    handler: async (request, reply) => {
      const body = request.body;
      const chain = resolveChain(ai, body.model, body.models);
      const chatRequest = toChatRequest(body);
      const { signal, meter } = await gatewayCall(request, reply, ctx.services, chatRequest.messages);
      const id = `chatcmpl-${randomUUID()}`;
      // Metering and budgets happen inside streamChat (the `meter` above), as for every model call.
      if (body.stream) {
        const relay = createRelay(id, body.stream_options?.include_usage === true);
        const events = ai.streamChat({ ...chatRequest, chain, signal, meter, relay });
        return streamCompletion(request, reply, events, { id, body, relay });
      }
      // Not streaming: the whole answer is all the client sees, so the upstream is asked for it whole where it can be.
      return complete(ai.streamChat({ ...chatRequest, chain, signal, meter, whole: true }), id);
    },
  });
}

interface GatewayRelay extends ChunkRelay {
  /** Set once the response is taken over, which is before anything can be relayed. */
  res?: ServerResponse;
  /** The link that is answering, as every chunk names it. */
  model: string;
}

/** Where an OpenAI-compatible upstream's text frames go once its link has answered: this response, renamed (see ChunkRelay). */
function createRelay(id: string, includeUsage: boolean): GatewayRelay {
  const rewrite = relayedChunks(id, includeUsage);
  return {
    text: '',
    model: '',
    forward(frames) {
      return this.res!.write(rewrite(frames, this.model));
    },
    drained() {
      return drained(this.res!);
    },
  };
}

async function complete(events: AsyncIterable<ChatEvent>, id: string) {
  const calls: ToolCall[] = [];
  let finish: Finish | undefined;
  let text = '';
  for await (const e of events) {
    if (e.type === 'delta') text += e.text;
    else if (e.type === 'tool_call') calls.push(e.call);
    else if (e.type === 'finish') finish = e;
  }
  if (!finish) throw new AppError(502, 'upstream_failed', 'Upstream failed', 'The provider ended without finishing');
  return {
    id,
    object: 'chat.completion',
    created: Math.floor(Date.now() / 1000),
    model: `${finish.provider}:${finish.model}`,
    system_fingerprint: null,
    choices: [
      {
        index: 0,
        message: { role: 'assistant', content: text || (calls.length ? null : ''), refusal: null, ...(calls.length ? { tool_calls: openAiToolCalls(calls) } : {}) },
        logprobs: null,
        finish_reason: openAiFinishReason(finish.finishReason),
      },
    ],
    usage: openAiUsage(finish.usage),
  };
}

/**
 * Streams chunks. The first output is awaited before anything is sent, so a
 * chain that fails before its first token still gets a real HTTP error
 * status; a failure after that can only be reported in the stream, as an
 * `error` object the OpenAI SDKs raise. Frames are written straight to the
 * socket (Node coalesces the writes of one tick into one syscall); a client
 * that reads slowly pauses the loop until its socket drains.
 */
async function streamCompletion(
  request: FastifyRequest,
  reply: FastifyReply,
  events: AsyncIterable<ChatEvent>,
  opts: { id: string; body: CompletionBody; relay: GatewayRelay },
) {
  const iterator = events[Symbol.asyncIterator]();
  // The link that is answering; every chunk names it, as OpenAI names the model snapshot.
  let model = opts.body.model;
  const nextOutput = async () => {
    for (;;) {
      const step = await iterator.next();
      if (step.done) return undefined;
      const e = step.value;
      if (e.type === 'attempt') model = `${e.provider}:${e.model}`;
      else if (e.type !== 'attempt_failed') return e;
    }
  };
  let next: ChatEvent | undefined;
  try {
    next = await nextOutput();
  } catch (err) {
    await iterator.return?.();
    throw err;
  }

  const includeUsage = opts.body.stream_options?.include_usage === true;
  const created = Math.floor(Date.now() / 1000);
  const chunk = (delta: Record<string, unknown>, finishReason: string | null) =>
    frame({ id: opts.id, object: 'chat.completion.chunk', created, model, system_fingerprint: null, choices: [{ index: 0, delta, logprobs: null, finish_reason: finishReason }], ...(includeUsage ? { usage: null } : {}) });
  // A text chunk is the same JSON but for its content: built from a template, one JSON.stringify of the text per token.
  let template: { model: string; head: string; tail: string } | undefined;
  const textChunk = (text: string) => {
    if (template?.model !== model) {
      const [head, tail] = chunk({ content: '\u0000' }, null).split(JSON.stringify('\u0000'));
      template = { model, head: head!, tail: tail! };
    }
    return template.head + JSON.stringify(text) + template.tail;
  };
  const res = takeOverForEvents(request, reply);
  const relay = opts.relay;
  relay.res = res;
  let toolIndex = 0;
  try {
    res.write(chunk({ role: 'assistant', content: '' }, null));
    while (next) {
      const e = next;
      relay.model = model;
      if (e.type === 'delta') res.write(textChunk(e.text));
      else if (e.type === 'tool_call') res.write(chunk({ tool_calls: [{ index: toolIndex++, ...openAiToolCalls([e.call])[0] }] }, null));
      else if (e.type === 'finish') {
        res.write(chunk({}, openAiFinishReason(e.finishReason)));
        if (includeUsage) res.write(frame({ id: opts.id, object: 'chat.completion.chunk', created, model, system_fingerprint: null, choices: [], usage: openAiUsage(e.usage) }));
      }
      if (res.writableNeedDrain) await drained(res);
      if (res.destroyed) return;
      next = await nextOutput();
    }
    res.end('data: [DONE]\n\n');
  } catch (err) {
    const status = err instanceof AppError ? err.status : 500;
    if (!(err instanceof AppError) && !res.destroyed) request.log.error({ err }, 'gateway stream failed');
    const message = err instanceof AppError ? err.message : 'The stream failed on our side';
    if (!res.destroyed) res.end(frame(openAiError(status, message, err instanceof AppError ? err.code : 'internal_error')));
  } finally {
    // The client left early: stop the generation (and its bill); a finished one has nothing left to stop.
    await iterator.return?.();
  }
}

const frame = (value: unknown) => `data: ${JSON.stringify(value)}\n\n`;

/** Every error on these routes, auth and validation included, in OpenAI's shape. */
export function openAiErrorHandler(raw: FastifyError | AppError | Error, request: FastifyRequest, reply: FastifyReply) {
  const error = databaseFailure(raw, request) ?? raw;
  // The client hung up before the first token, which aborted the upstream call: nobody is left to answer.
  if (error.name === 'AbortError' && (reply.raw.destroyed || request.raw.socket?.destroyed)) {
    request.log.info('client closed the request before the first token');
    return reply.status(499).send(openAiError(499, 'Client closed the request', 'client_closed_request'));
  }
  if (error instanceof AppError) {
    reply.headers(error.headers);
    const param = typeof error.extra.param === 'string' ? error.extra.param : error.code === 'model_not_found' || error.code === 'unknown_model' ? 'model' : null;
    const extra = Array.isArray(error.extra.attempts) ? { attempts: error.extra.attempts } : {};
    return reply.status(error.status).send(openAiError(error.status, error.message, error.code, param, extra));
  }
  if (hasZodFastifySchemaValidationErrors(error)) {
    const first = error.validation[0];
    const param = first?.instancePath ? first.instancePath.slice(1).replaceAll('/', '.') : null;
    const message = error.validation.map((v) => `${v.instancePath.slice(1).replaceAll('/', '.') || 'body'}: ${v.message}`).join('; ');
    return reply.status(400).send(openAiError(400, `Invalid request: ${message}`, 'validation_failed', param));
  }
  const status = (error as FastifyError).statusCode;
  if (status && status >= 400 && status < 500) return reply.status(status).send(openAiError(status, error.message, clientErrorCode(error as FastifyError)));
  request.log.error({ err: error }, 'unhandled error');
  return reply.status(500).send(openAiError(500, `Something went wrong on our side. Quote request id ${request.id} when reporting it.`, 'internal_error'));
}
