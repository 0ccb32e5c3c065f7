import { z } from 'zod';
import { ValidationError } from '../../errors.ts';
import { isBase64 } from './gateway-format.ts';
import type { ChatMessage, ChatPart, ChatRequest, ToolCall, Usage } from './types.ts';

/**
 * Anthropic's Messages API on the wire: the request fields POST /v1/messages
 * reads (others, such as `thinking` or `service_tier`, are accepted and
 * ignored, as Anthropic ignores what a newer client adds) and the message /
 * event / error shapes the official SDKs parse.
 */

const textBlock = z.looseObject({ type: z.literal('text'), text: z.string() });
const imageSource = z.discriminatedUnion('type', [
  z.looseObject({ type: z.literal('base64'), media_type: z.enum(['image/jpeg', 'image/png', 'image/gif', 'image/webp']), data: z.string().min(1).refine(isBase64, 'must be base64') }),
  z.looseObject({ type: z.literal('url'), url: z.url({ protocol: /^https?$/ }) }),
]);
const imageBlock = z.looseObject({ type: z.literal('image'), source: imageSource });
const toolUseBlock = z.looseObject({ type: z.literal('tool_use'), id: z.string().min(1), name: z.string().min(1), input: z.record(z.string(), z.unknown()) });
const toolResultBlock = z.looseObject({
  type: z.literal('tool_result'),
  tool_use_id: z.string().min(1),
  content: z.union([z.string(), z.array(textBlock)], { error: () => 'tool_result content must be a string or text blocks (images in tool results are not supported)' }).optional(),
  is_error: z.boolean().optional(),
});
/** Reasoning from an earlier turn of an Anthropic model: accepted in history, not passed on. */
const thinkingBlock = z.looseObject({ type: z.enum(['thinking', 'redacted_thinking']) });

const block = z.discriminatedUnion('type', [textBlock, imageBlock, toolUseBlock, toolResultBlock, thinkingBlock], {
  error: (issue) => (issue.code === 'invalid_union' ? 'unsupported content block type (supported: text, image, tool_use, tool_result)' : undefined),
});
type Block = z.infer<typeof block>;

/** A failing block is named with its own reason, not only the union's "Invalid input". */
// An array holds at least one block, as Anthropic requires (an empty one would send an empty turn, or none).
const content = z.union([z.string(), z.array(block).min(1)], {
  error: (issue) => {
    if (issue.code !== 'invalid_union' || !Array.isArray(issue.input)) return 'expected a string or an array of content blocks';
    const inner = issue.errors[1]?.[0];
    if (!inner) return undefined;
    return inner.path.length ? `[${inner.path.join('.')}] ${inner.message}` : inner.message;
  },
});
const message = z.looseObject({ role: z.enum(['user', 'assistant']), content });

const tool = z.looseObject({
  /** Client tools only: Anthropic's server tools (web search, code execution…) run at Anthropic, which Parley is not. */
  type: z.literal('custom').optional(),
  name: z.string().regex(/^[a-zA-Z0-9_-]{1,128}$/),
  description: z.string().optional(),
  input_schema: z.looseObject({ type: z.literal('object') }),
});

const toolChoice = z.discriminatedUnion('type', [
  z.looseObject({ type: z.literal('auto'), disable_parallel_tool_use: z.boolean().optional() }),
  z.looseObject({ type: z.literal('any'), disable_parallel_tool_use: z.boolean().optional() }),
  z.looseObject({ type: z.literal('tool'), name: z.string().min(1), disable_parallel_tool_use: z.boolean().optional() }),
  z.looseObject({ type: z.literal('none') }),
]);

/** Structured output, as Anthropic takes it: JSON matching a schema, its only format. */
const outputFormat = z.looseObject({ type: z.literal('json_schema'), schema: z.record(z.string(), z.unknown()) });

/** More, or longer, would make scanning every chunk for them costly (the held-back tail is matched against each sequence's start); Anthropic documents no limit. */
export const MAX_STOP_SEQUENCES = 16;
export const MAX_STOP_SEQUENCE_CHARS = 256;

export const messagesBody = z
  .looseObject({
    /** A Parley model id (`provider:model`), a bare model name from the catalog, or a comma-separated fallback chain. */
    model: z.string().min(1),
    max_tokens: z.number().int().min(1).max(1_000_000),
    messages: z.array(message).min(1),
    system: z.union([z.string(), z.array(textBlock)], { error: () => 'expected a string or an array of text blocks' }).optional(),
    temperature: z.number().min(0).max(1).optional(),
    top_p: z.number().min(0).max(1).optional(),
    /** Passed on to providers that take it; OpenAI's own API has no top_k, so it does not get one. */
    top_k: z.number().int().positive().optional(),
    stop_sequences: z.array(z.string().min(1).max(MAX_STOP_SEQUENCE_CHARS)).max(MAX_STOP_SEQUENCES).optional(),
    stream: z.boolean().optional(),
    tools: z.array(tool).max(128).optional(),
    tool_choice: toolChoice.optional(),
    metadata: z.looseObject({ user_id: z.string().max(256).nullish() }).optional(),
    /** `format` is read; `effort` and what a newer client adds are accepted and ignored. */
    output_config: z.looseObject({ format: outputFormat.nullish() }).optional(),
    /** The beta's name for `output_config.format` (`structured-outputs-2025-11-13`), which older SDKs send. */
    output_format: outputFormat.nullish(),
  })
  .meta({ id: 'AnthropicMessagesRequest' });

export type MessagesBody = z.infer<typeof messagesBody>;

export const countTokensBody = messagesBody.omit({ max_tokens: true, stream: true, stop_sequences: true, temperature: true, top_p: true, top_k: true, metadata: true }).meta({ id: 'AnthropicCountTokensRequest' });
export type CountTokensBody = z.infer<typeof countTokensBody>;


const joinText = (blocks: Array<{ text: string }>) => blocks.map((b) => b.text).join('');

/** An image block as a ChatPart: base64 becomes a data: URL (what drivers take), a URL is passed on. */
const imagePart = (b: Extract<Block, { type: 'image' }>): ChatPart => ({ type: 'image', url: b.source.type === 'base64' ? `data:${b.source.media_type};base64,${b.source.data}` : b.source.url });

/**
 * One Anthropic message as Parley's messages. A user message's tool results
 * become `tool` messages ahead of its text (OpenAI wants them right after the
 * calls they answer); an assistant's tool_use blocks become its tool calls.
 */
function toChatMessages(m: z.infer<typeof message>, index: number): ChatMessage[] {
  if (typeof m.content === 'string') return [{ role: m.role, content: m.content }];
  const misplaced = m.content.find((b) => (m.role === 'user' ? b.type === 'tool_use' : b.type === 'tool_result' || b.type === 'image'));
  if (misplaced) throw ValidationError(`messages.${index}: ${m.role} messages cannot contain ${misplaced.type} blocks`, 'invalid_request');
  if (m.role === 'assistant') {
    const calls = m.content.flatMap((b): ToolCall[] => (b.type === 'tool_use' ? [{ id: b.id, name: b.name, arguments: JSON.stringify(b.input) }] : []));
    const text = joinText(m.content.filter((b) => b.type === 'text'));
    return [{ role: 'assistant', content: text, ...(calls.length ? { toolCalls: calls } : {}) }];
  }
  const out: ChatMessage[] = [];
  const parts: ChatPart[] = [];
  for (const b of m.content) {
    if (b.type === 'tool_result') out.push({ role: 'tool', toolCallId: b.tool_use_id, content: typeof b.content === 'string' ? b.content : joinText(b.content ?? []) });
    else if (b.type === 'text') parts.push({ type: 'text', text: b.text });
    else if (b.type === 'image') parts.push(imagePart(b));
  }
  if (parts.length) {
    const text = joinText(parts.filter((p) => p.type === 'text'));
    out.push({ role: 'user', content: text, ...(parts.some((p) => p.type === 'image') ? { parts } : {}) });
  }
  return out;
}

const toolUseIds = (m: z.infer<typeof message> | undefined) =>
  m?.role === 'assistant' && Array.isArray(m.content) ? m.content.flatMap((b) => (b.type === 'tool_use' ? [b.id] : [])) : [];

/**
 * Anthropic's rules for tools, checked before a model is called, as Anthropic does, so every
 * provider gets the same 400 (a lenient one answered anyway; OpenAI refused only after every link
 * of the chain had been tried): each tool_use is answered by a tool_result in the very next
 * message, each tool_result answers a tool_use of the message before it, and a tool_choice names
 * one of the tools. Not on count_tokens, which calls no model and counts a turn not yet answered.
 */
export function checkToolUse(body: MessagesBody) {
  const choice = body.tool_choice;
  if (choice?.type === 'tool' && !body.tools?.some((t) => t.name === choice.name)) {
    throw ValidationError(`tool_choice.name: no tool named "${choice.name}" in tools`, 'invalid_request');
  }
  const messages = body.messages;
  messages.forEach((m, i) => {
    const calls = toolUseIds(m);
    if (calls.length) {
      const next = messages[i + 1]?.content;
      const answered = new Set(Array.isArray(next) ? next.flatMap((b) => (b.type === 'tool_result' ? [b.tool_use_id] : [])) : []);
      const missing = calls.filter((id) => !answered.has(id));
      if (missing.length) {
        throw ValidationError(`messages.${i}: tool_use ids were found without tool_result blocks immediately after: ${missing.join(', ')}. Each tool_use block must have a corresponding tool_result block in the next message.`, 'invalid_request');
      }
    }
    if (m.role !== 'user' || typeof m.content === 'string') return;
    const asked = new Set(toolUseIds(messages[i - 1]));
    m.content.forEach((b, j) => {
      if (b.type === 'tool_result' && !asked.has(b.tool_use_id)) {
        throw ValidationError(`messages.${i}.content.${j}: unexpected tool_use_id found in tool_result blocks: ${b.tool_use_id}. Each tool_result block must have a corresponding tool_use block in the previous message.`, 'invalid_request');
      }
    });
  });
}

/** The Anthropic request as Parley's ChatRequest, minus the chain (resolved by the caller). */
export function toChatRequest(body: CountTokensBody & Partial<Pick<MessagesBody, 'max_tokens' | 'temperature' | 'top_p' | 'top_k'>>): Omit<ChatRequest, 'chain'> {
  const system = body.system === undefined ? undefined : typeof body.system === 'string' ? body.system : joinText(body.system);
  const messages: ChatMessage[] = [...(system ? [{ role: 'system' as const, content: system }] : []), ...body.messages.flatMap(toChatMessages)];
  const choice = body.tool_choice;
  const format = outputFormatOf(body);
  const param = body.output_format ? 'output_format' : 'output_config.format';
  return {
    messages,
    temperature: body.temperature,
    topP: body.top_p,
    topK: body.top_k,
    maxTokens: body.max_tokens,
    tools: body.tools?.map((t) => ({ name: t.name, description: t.description, parameters: t.input_schema })),
    toolChoice: choice === undefined ? undefined : choice.type === 'tool' ? { name: choice.name } : choice.type === 'any' ? 'required' : choice.type,
    // Anthropic's format has no name (OpenAI-compatible upstreams get `response`, chat-completions.ts) and no strict: its
    // schemas may leave properties optional, which OpenAI's strict mode refuses.
    responseFormat: format ? { type: 'json', schema: format.schema, param } : undefined,
  };
}

/** The output format under either of its names; both at once is refused, as the Anthropic SDK refuses it. */
function outputFormatOf(body: Pick<CountTokensBody, 'output_config' | 'output_format'>) {
  const format = body.output_config?.format;
  if (body.output_format && format) throw ValidationError('output_format: both output_format and output_config.format were given; send only output_config.format (output_format is deprecated)', 'invalid_request');
  return body.output_format ?? format ?? undefined;
}

export type StopReason = 'end_turn' | 'max_tokens' | 'stop_sequence' | 'tool_use' | 'refusal';

/** Parley's finish reasons (the AI SDK's) as Anthropic's stop reasons. */
export function stopReason(finishReason: string, madeToolCalls: boolean): StopReason {
  if (finishReason === 'length') return 'max_tokens';
  if (finishReason === 'content-filter') return 'refusal';
  if (finishReason === 'tool-calls' || madeToolCalls) return 'tool_use';
  return 'end_turn';
}

/**
 * Anthropic's usage: its `input_tokens` leaves out tokens read from the
 * prompt cache, which it reports apart. Cache writes are not reported by
 * every provider, so they are left null (unknown) rather than 0.
 */
export function anthropicUsage(usage: Usage) {
  const cached = usage.cachedTokens ?? 0;
  return { input_tokens: Math.max(0, usage.inputTokens - cached), output_tokens: usage.outputTokens, cache_creation_input_tokens: null, cache_read_input_tokens: cached };
}

const contentBlock = z.discriminatedUnion('type', [
  z.object({ type: z.literal('text'), text: z.string() }),
  z.object({ type: z.literal('tool_use'), id: z.string(), name: z.string(), input: z.record(z.string(), z.unknown()) }),
]);
export type ContentBlock = z.infer<typeof contentBlock>;

/** A non-streamed answer, as Anthropic sends it. */
export const messageResponse = z
  .object({
    id: z.string(),
    type: z.literal('message'),
    role: z.literal('assistant'),
    /** The link of the chain that answered, as `provider:model`. */
    model: z.string(),
    content: z.array(contentBlock),
    stop_reason: z.enum(['end_turn', 'max_tokens', 'stop_sequence', 'tool_use', 'refusal']),
    stop_sequence: z.string().nullable(),
    usage: z.object({ input_tokens: z.number().int(), output_tokens: z.number().int(), cache_creation_input_tokens: z.null(), cache_read_input_tokens: z.number().int() }),
  })
  .meta({ id: 'AnthropicMessage' });

export const toolUseContent = (call: ToolCall): ContentBlock => ({ type: 'tool_use', id: call.id, name: call.name, input: parseInput(call.arguments) });

/** A tool call's arguments as the object Anthropic's `input` is; a model's malformed JSON becomes `{}` rather than a failed answer. */
export function parseInput(text: string): Record<string, unknown> {
  try {
    const value: unknown = JSON.parse(text || '{}');
    return value !== null && typeof value === 'object' && !Array.isArray(value) ? (value as Record<string, unknown>) : {};
  } catch {
    return {};
  }
}

/**
 * Anthropic's `stop_sequences`, applied to the output by Parley so they work
 * with every provider and the answer says which one matched: text is held
 * back while it could still be the start of a sequence, and cut before the
 * first one found.
 */
export function createStopScanner(sequences: string[]) {
  let pending = '';
  return {
    /** New text: what can be sent now, and the sequence that ended the output, if one did. */
    push(text: string): { text: string; stopped?: string } {
      if (!sequences.length) return { text };
      const all = pending + text;
      let at = -1;
      let stopped: string | undefined;
      for (const s of sequences) {
        const i = all.indexOf(s);
        if (i !== -1 && (at === -1 || i < at)) [at, stopped] = [i, s];
      }
      if (stopped !== undefined) {
        pending = '';
        return { text: all.slice(0, at), stopped };
      }
      let keep = 0;
      for (const s of sequences) {
        for (let n = Math.min(s.length - 1, all.length); n > keep; n--) {
          if (all.endsWith(s.slice(0, n))) {
            keep = n;
            break;
          }
        }
      }
      pending = all.slice(all.length - keep);
      return { text: all.slice(0, all.length - keep) };
    },
    /** What was held back, once the output ended without a sequence. */
    flush(): string {
      const rest = pending;
      pending = '';
      return rest;
    },
  };
}

export type AnthropicErrorType =
  | 'invalid_request_error'
  | 'authentication_error'
  | 'billing_error'
  | 'permission_error'
  | 'not_found_error'
  | 'request_too_large'
  | 'rate_limit_error'
  | 'api_error'
  | 'timeout_error'
  | 'overloaded_error';

/**
 * Anthropic's error body, which its SDKs turn into typed errors by HTTP status
 * (in a stream, by `error.type`). Parley's stable code goes where Anthropic
 * puts its own, `error.details.error_code` (the SDK's `errorCode`).
 */
export function anthropicError(status: number, message: string, code: string, requestId: string) {
  return { type: 'error' as const, error: { type: errorType(status), message, details: { error_code: code } }, request_id: requestId };
}

function errorType(status: number): AnthropicErrorType {
  if (status === 401) return 'authentication_error';
  if (status === 402) return 'billing_error';
  if (status === 403) return 'permission_error';
  if (status === 404) return 'not_found_error';
  if (status === 413) return 'request_too_large';
  if (status === 429) return 'rate_limit_error';
  if (status === 503 || status === 529) return 'overloaded_error';
  if (status === 504) return 'timeout_error';
  if (status >= 500) return 'api_error';
  return 'invalid_request_error';
}
