import { z } from 'zod';
import { ValidationError } from '../../errors.ts';
import type { ChatMessage, ChatPart, ChatRequest, ToolCall, Usage } from './types.ts';

/**
 * OpenAI Chat Completions on the wire: the request fields the gateway reads
 * (others, such as `user` or `seed`, are accepted and ignored, as OpenAI-
 * compatible servers do) and the response / chunk shapes the official SDKs
 * parse.
 */

const textPart = z.looseObject({ type: z.literal('text'), text: z.string() });
const imagePart = z.looseObject({ type: z.literal('image_url'), image_url: z.looseObject({ url: z.string().min(1), detail: z.string().optional() }) });
// An array of parts holds at least one, as OpenAI requires (an empty one would send an empty turn).
const content = z.union([z.string(), z.array(z.looseObject({ type: z.string() })).min(1)]).nullable().optional();
const toolCall = z.looseObject({ id: z.string(), type: z.literal('function').optional(), function: z.looseObject({ name: z.string(), arguments: z.string() }) });

const message = z.discriminatedUnion('role', [
  z.looseObject({ role: z.enum(['system', 'developer']), content }),
  z.looseObject({ role: z.literal('user'), content }),
  z.looseObject({ role: z.literal('assistant'), content, tool_calls: z.array(toolCall).optional() }),
  z.looseObject({ role: z.literal('tool'), content, tool_call_id: z.string() }),
]);

/**
 * A JSON Schema output format's fields as OpenAI checks them: in `text.format` itself in the Responses API,
 * under `json_schema` in Chat Completions (where `schema` may be left out).
 */
export const jsonSchemaFormat = {
  name: z.string().regex(/^[a-zA-Z0-9_-]{1,64}$/, 'must be 1 to 64 letters, digits, underscores or dashes'),
  description: z.string().nullish(),
  schema: z.record(z.string(), z.unknown()),
  strict: z.boolean().nullish(),
};

/** Structured output, as Chat Completions takes it: `text` (the default), any JSON object, or JSON matching a schema. */
const responseFormat = z.discriminatedUnion('type', [
  z.looseObject({ type: z.literal('text') }),
  z.looseObject({ type: z.literal('json_object') }),
  z.looseObject({ type: z.literal('json_schema'), json_schema: z.looseObject({ ...jsonSchemaFormat, schema: jsonSchemaFormat.schema.optional() }) }),
]);

/** A `json_object` format (no fields) or a `json_schema` one (its fields) as ChatRequest's: the name tells the drivers which it was. */
export function jsonResponseFormat(fields?: { name: string; description?: string | null; schema?: Record<string, unknown>; strict?: boolean | null }): NonNullable<ChatRequest['responseFormat']> {
  if (!fields) return { type: 'json' };
  return {
    type: 'json',
    name: fields.name,
    ...(fields.schema !== undefined ? { schema: fields.schema } : {}),
    ...(fields.description != null ? { description: fields.description } : {}),
    ...(fields.strict != null ? { strict: fields.strict } : {}),
  };
}

/** An output bound: Parley's ceiling, as on the Messages API; a link whose model takes fewer is asked for its most. */
export const maxTokens = z.number().int().min(1).max(1_000_000).nullish();

export const completionBody = z
  .looseObject({
    /** A model id (`provider:model` or a bare name from the catalog), or a comma-separated fallback chain. */
    model: z.string().min(1),
    /** OpenRouter-style fallbacks, tried after `model`. */
    models: z.array(z.string().min(1)).max(8).optional(),
    messages: z.array(message).min(1),
    stream: z.boolean().nullish(),
    stream_options: z.looseObject({ include_usage: z.boolean().optional() }).nullish(),
    temperature: z.number().min(0).max(2).nullish(),
    top_p: z.number().min(0).max(1).nullish(),
    max_tokens: maxTokens,
    max_completion_tokens: maxTokens,
    /** Up to 4 sequences where the model stops, as OpenAI takes them. */
    stop: z.union([z.string().min(1), z.array(z.string().min(1)).max(4)]).nullish(),
    n: z.literal(1).nullish(),
    /** At most 128, as OpenAI takes them (and the Messages API here). */
    tools: z
      .array(z.looseObject({ type: z.literal('function'), function: z.looseObject({ name: z.string().min(1), description: z.string().optional(), parameters: z.record(z.string(), z.unknown()).optional() }) }))
      .max(128)
      .optional(),
    tool_choice: z.union([z.enum(['none', 'auto', 'required']), z.looseObject({ type: z.literal('function'), function: z.looseObject({ name: z.string() }) })]).optional(),
    response_format: responseFormat.nullish(),
  })
  .meta({ id: 'ChatCompletionRequest' });

export type CompletionBody = z.infer<typeof completionBody>;

function text(value: z.infer<typeof content>, role: string, at: number): string {
  if (value == null) return '';
  if (typeof value === 'string') return value;
  return value
    .map((part, j) => {
      const parsed = textPart.safeParse(part);
      if (!parsed.success) throw unsupportedPart(part, at, j, `Only text content is supported in ${role} messages`);
      return parsed.data.text;
    })
    .join('');
}

/** A part the gateway cannot take, named by its param: a known type with the wrong shape, or another type. */
function unsupportedPart(part: { type: string }, at: number, j: number, supported: string) {
  const param = `messages.${at}.content.${j}`;
  const known = part.type === 'text' || part.type === 'image_url';
  const message = known ? `${param}: a malformed "${part.type}" part (${part.type === 'text' ? 'text must be a string' : 'image_url.url must be a non-empty string'})` : `${param}: ${supported} (got a "${part.type}" part)`;
  return ValidationError(message, known ? 'validation_failed' : 'unsupported_content', { param });
}

const DATA_IMAGE = /^data:[\w.+-]+\/[\w.+-]+;base64,(.*)$/s;

/** Standard base64, padded: what an image's inline data must be for any provider to decode it. */
export const isBase64 = (text: string) => text.length % 4 === 0 && /^[A-Za-z0-9+/]*={0,2}$/.test(text);

/**
 * Why an image's URL cannot be sent to a model, or undefined when it can: an http(s) link, or a `data:`
 * URL with a media type and base64. Checked at the door: past it, a URL no provider could take failed
 * each link in turn as if the provider were at fault.
 */
export function imageUrlProblem(url: string): string | undefined {
  if (url.startsWith('data:')) {
    const data = DATA_IMAGE.exec(url);
    return data && isBase64(data[1]!) ? undefined : 'a data: URL must be data:<media type>;base64,<base64>';
  }
  if (!URL.canParse(url)) return 'not a URL';
  const { protocol } = new URL(url);
  return protocol === 'https:' || protocol === 'http:' ? undefined : 'an image URL must be https, http or data:';
}

/**
 * A user message's content: text, or text and `image_url` parts, which are
 * passed on as they came (to OpenAI-compatible upstreams unchanged; to others
 * in their own image format), to a model that can see.
 */
function userMessage(value: z.infer<typeof content>, at: number): ChatMessage {
  if (!Array.isArray(value) || !value.some((p) => p.type === 'image_url')) return { role: 'user', content: text(value, 'user', at) };
  const parts = value.map((part, j): ChatPart => {
    const image = imagePart.safeParse(part);
    if (image.success) {
      const problem = imageUrlProblem(image.data.image_url.url);
      const param = `messages.${at}.content.${j}.image_url.url`;
      if (problem) throw ValidationError(`${param}: ${problem}`, 'validation_failed', { param });
      return { type: 'image', url: image.data.image_url.url, ...(image.data.image_url.detail !== undefined ? { detail: image.data.image_url.detail } : {}) };
    }
    const parsed = textPart.safeParse(part);
    if (!parsed.success) throw unsupportedPart(part, at, j, 'Only text and image_url content is supported in user messages');
    return { type: 'text', text: parsed.data.text };
  });
  return { role: 'user', content: parts.flatMap((p) => (p.type === 'text' ? [p.text] : [])).join(''), parts };
}

/** The OpenAI request as Parley's ChatRequest, minus the chain (resolved by the caller). */
export function toChatRequest(body: CompletionBody): Omit<ChatRequest, 'chain'> {
  const messages = body.messages.map((m, at): ChatMessage => {
    switch (m.role) {
      case 'system':
      case 'developer':
        return { role: 'system', content: text(m.content, m.role, at) };
      case 'user':
        return userMessage(m.content, at);
      case 'assistant': {
        const calls = m.tool_calls?.map((c): ToolCall => ({ id: c.id, name: c.function.name, arguments: c.function.arguments }));
        return { role: 'assistant', content: text(m.content, m.role, at), ...(calls?.length ? { toolCalls: calls } : {}) };
      }
      case 'tool':
        return { role: 'tool', content: text(m.content, m.role, at), toolCallId: m.tool_call_id };
    }
  });
  const choice = body.tool_choice;
  return {
    messages,
    temperature: body.temperature ?? undefined,
    topP: body.top_p ?? undefined,
    maxTokens: body.max_completion_tokens ?? body.max_tokens ?? undefined,
    stop: typeof body.stop === 'string' ? [body.stop] : (body.stop ?? undefined),
    tools: body.tools?.map((t) => ({ name: t.function.name, description: t.function.description, parameters: t.function.parameters ?? { type: 'object', properties: {} } })),
    toolChoice: choice === undefined ? undefined : typeof choice === 'string' ? choice : { name: choice.function.name },
    responseFormat: body.response_format ? responseFormatOf(body.response_format) : undefined,
  };
}

function responseFormatOf(format: NonNullable<CompletionBody['response_format']>): ChatRequest['responseFormat'] {
  if (format.type === 'text') return undefined;
  return jsonResponseFormat(format.type === 'json_schema' ? format.json_schema : undefined);
}

const FINISH: Record<string, string> = { stop: 'stop', length: 'length', 'tool-calls': 'tool_calls', 'content-filter': 'content_filter' };
export const openAiFinishReason = (reason: string) => FINISH[reason] ?? 'stop';

export function openAiUsage(usage: Usage) {
  return {
    prompt_tokens: usage.inputTokens,
    completion_tokens: usage.outputTokens,
    total_tokens: usage.inputTokens + usage.outputTokens,
    prompt_tokens_details: { cached_tokens: usage.cachedTokens ?? 0 },
  };
}

/**
 * Rewrites relayed upstream chunks (ChunkRelay) for the client: Parley's
 * response id and the answering link's `provider:model` in place of the
 * upstream's, and `usage: null` only when the client asked for usage. Only
 * these fields change: a key with its quotes cannot occur unescaped inside a
 * JSON string, so text never matches.
 */
export function relayedChunks(id: string, includeUsage: boolean) {
  const idField = `data: {"id":${JSON.stringify(id)}`;
  let model: string | undefined;
  let modelField = '';
  const toId = () => idField;
  const toModel = () => modelField;
  return (frames: string, answering: string): string => {
    if (answering !== model) {
      model = answering;
      modelField = `"model":${JSON.stringify(model)}`;
    }
    const out = frames.replace(CHUNK_ID, toId).replace(CHUNK_MODEL, toModel);
    return includeUsage ? out : out.replaceAll(',"usage":null', '');
  };
}

const CHUNK_ID = /data: \{"id":"[^"\\]*"/g;
const CHUNK_MODEL = /"model":"[^"\\]*"/g;

export function openAiToolCalls(calls: ToolCall[]) {
  return calls.map((c) => ({ id: c.id, type: 'function' as const, function: { name: c.name, arguments: c.arguments } }));
}

/** OpenAI's error body, which its SDKs turn into typed errors by HTTP status. */
export function openAiError(status: number, message: string, code: string | null, param: string | null = null, extra: Record<string, unknown> = {}) {
  return { error: { message, type: errorType(status), code, param, ...extra } };
}

function errorType(status: number): string {
  if (status === 401) return 'authentication_error';
  if (status === 402) return 'insufficient_quota';
  if (status === 403) return 'permission_error';
  if (status === 429) return 'rate_limit_error';
  if (status >= 500) return 'server_error';
  return 'invalid_request_error';
}
