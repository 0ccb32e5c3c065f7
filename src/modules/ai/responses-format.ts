import { randomBytes } from 'node:crypto';
import { z } from 'zod';
import { AppError, ValidationError } from '../../errors.ts';
import { imageUrlProblem, jsonResponseFormat, jsonSchemaFormat, maxTokens } from './gateway-format.ts';
import type { ChatMessage, ChatPart, ChatRequest, ToolCall, ToolDefinition, Usage } from './types.ts';

/**
 * OpenAI's Responses API on the wire: the request fields Parley reads, the
 * input items it turns into a ChatRequest, and the response object and
 * output items the official SDKs parse. Fields Parley cannot honour over
 * every provider (built-in tools, background mode) are refused with a 400
 * rather than silently dropped.
 */

const part = z.looseObject({ type: z.string() });

/** Structured output, as the Responses API takes it: as Chat Completions' `response_format`, the schema's fields in the format itself. */
const textFormat = z.discriminatedUnion('type', [
  z.looseObject({ type: z.literal('text') }),
  z.looseObject({ type: z.literal('json_object') }),
  z.looseObject({ type: z.literal('json_schema'), ...jsonSchemaFormat }),
]);
type TextFormat = z.infer<typeof textFormat>;

/** The longest id taken: a response's, and an input item's, which `input_items` takes back as its `after` cursor. */
export const MAX_ID_LENGTH = 200;

const item = z.looseObject({ type: z.string().optional(), role: z.string().optional() }).meta({
  description: 'A message (`role` user/assistant/system/developer, `content` a string or `input_text`/`input_image` parts), a `function_call` or a `function_call_output`',
});

export const responseBody = z
  .looseObject({
    /** A model id (`provider:model` or a bare name from the catalog), or a comma-separated fallback chain. */
    model: z.string().min(1),
    input: z.union([z.string(), z.array(item)]).optional(),
    instructions: z.string().nullish(),
    temperature: z.number().min(0).max(2).nullish(),
    top_p: z.number().min(0).max(1).nullish(),
    max_output_tokens: maxTokens,
    tools: z.array(z.looseObject({ type: z.string() })).max(128).nullish(),
    tool_choice: z.union([z.enum(['none', 'auto', 'required']), z.looseObject({ type: z.string(), name: z.string().optional() })]).nullish(),
    parallel_tool_calls: z.boolean().nullish(),
    stream: z.boolean().nullish(),
    store: z.boolean().nullish(),
    previous_response_id: z.string().min(1).max(MAX_ID_LENGTH).nullish(),
    /** Up to 16 pairs, as OpenAI takes them. */
    metadata: z.record(z.string().max(64), z.string().max(512)).refine((m) => Object.keys(m).length <= 16, 'at most 16 key-value pairs').nullish(),
    user: z.string().max(512).nullish(),
    background: z.boolean().nullish(),
    conversation: z.unknown().optional(),
    prompt: z.unknown().optional(),
    text: z.looseObject({ format: textFormat.optional() }).nullish(),
  })
  .meta({ id: 'ResponseCreateRequest' });

export type ResponseBody = z.infer<typeof responseBody>;

/** `POST /v1/responses/input_tokens`: a create request's fields, `model` optional as OpenAI has it. */
export const inputTokensBody = responseBody.extend({ model: z.string().min(1).optional() }).meta({ id: 'ResponseInputTokensRequest' });
export type Item = Record<string, unknown>;

/** An item's own id: kept as sent and listed by `input_items`, whose `after` takes it back (a longer one would end paging there). */
const itemId = z.string().max(MAX_ID_LENGTH).nullish();

const messageItem = z.looseObject({
  id: itemId,
  type: z.literal('message').optional(),
  role: z.enum(['user', 'assistant', 'system', 'developer']),
  content: z.union([z.string(), z.array(part).min(1)]),
});
const functionCallItem = z.looseObject({ id: itemId, type: z.literal('function_call'), call_id: z.string().min(1), name: z.string().min(1), arguments: z.string() });
const functionCallOutputItem = z.looseObject({ id: itemId, type: z.literal('function_call_output'), call_id: z.string().min(1), output: z.union([z.string(), z.array(part)]) });
const reasoningItem = z.looseObject({ id: itemId, type: z.literal('reasoning') });
const functionTool = z.looseObject({
  type: z.literal('function'),
  /** As OpenAI requires of a function's name. */
  name: z.string().regex(/^[a-zA-Z0-9_-]{1,64}$/, 'must be 1 to 64 letters, digits, underscores or dashes'),
  description: z.string().nullish(),
  parameters: z.record(z.string(), z.unknown()).nullish(),
  strict: z.boolean().nullish(),
});

/** A 400 naming the offending field, as OpenAI's `param`. */
const invalid = (param: string, message: string, code = 'invalid_value') => ValidationError(message, code, { param });

function parse<T extends z.ZodType>(schema: T, value: unknown, param: string): z.infer<T> {
  const parsed = schema.safeParse(value);
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0]!;
  const at = [param, ...issue.path.map(String)].join('.');
  throw invalid(at, `Invalid ${at}: ${issue.message}`);
}

/** Refuses what would otherwise be silently ignored and change the answer's meaning. */
export function checkSupported(body: Pick<ResponseBody, 'background' | 'conversation' | 'prompt'>) {
  if (body.background) throw invalid('background', 'Background responses are not supported by Parley: send `stream: true` or wait for the answer', 'unsupported_parameter');
  if (body.conversation != null) throw invalid('conversation', 'Conversations are not supported by Parley: continue with `previous_response_id`', 'unsupported_parameter');
  if (body.prompt != null) throw invalid('prompt', 'Stored prompts are not supported by Parley: send `instructions`', 'unsupported_parameter');
}

/** The request's `input` as items (a string is one user message). */
export function inputItems(body: Pick<ResponseBody, 'input'>): Item[] {
  if (body.input === undefined) return [];
  if (typeof body.input === 'string') return [{ type: 'message', role: 'user', content: body.input }];
  return body.input;
}

/** Function tools as Parley's ToolDefinitions; OpenAI's built-in tools (web search, file search, …) have no equivalent over every provider. */
export function toolDefinitions(tools: ResponseBody['tools']): ToolDefinition[] | undefined {
  if (!tools?.length) return undefined;
  return tools.map((tool, i) => {
    if (tool.type !== 'function') throw invalid(`tools[${i}].type`, `Tool type "${tool.type}" is not supported by Parley: only "function" tools are`, 'unsupported_tool');
    const t = parse(functionTool, tool, `tools[${i}]`);
    return { name: t.name, ...(t.description ? { description: t.description } : {}), parameters: t.parameters ?? { type: 'object', properties: {} } };
  });
}

function toolChoice(choice: ResponseBody['tool_choice'], tools: ToolDefinition[] | undefined): ChatRequest['toolChoice'] {
  if (choice == null || typeof choice === 'string') return choice ?? undefined;
  if (choice.type !== 'function' || !choice.name) throw invalid('tool_choice', `tool_choice of type "${choice.type}" is not supported by Parley: use "auto", "none", "required" or {"type":"function","name":…}`, 'unsupported_tool');
  // As OpenAI refuses it; a provider would refuse it too, or a lenient one answer without the tool.
  if (!tools?.some((t) => t.name === choice.name)) throw invalid('tool_choice.name', `Tool choice '${choice.name}' not found in 'tools' parameter.`);
  return { name: choice.name };
}

function partsText(parts: z.infer<typeof part>[], param: string): string {
  return parts
    .map((p, i) => {
      if ((p.type === 'input_text' || p.type === 'output_text' || p.type === 'text') && typeof p.text === 'string') return p.text;
      if (p.type === 'refusal' && typeof p.refusal === 'string') return p.refusal;
      throw invalid(`${param}[${i}]`, `Content part "${p.type}" is not supported here: only text parts are`, 'unsupported_content');
    })
    .join('');
}

/** A user message's content: text, or text and `input_image` parts (an image URL or a data URL), in order. */
function userMessage(content: string | z.infer<typeof part>[], param: string): ChatMessage {
  if (typeof content === 'string') return { role: 'user', content };
  if (!content.some((p) => p.type === 'input_image')) return { role: 'user', content: partsText(content, param) };
  const parts = content.map((p, i): ChatPart => {
    if (p.type !== 'input_image') return { type: 'text', text: partsText([p], `${param}[${i}]`) };
    if (typeof p.image_url !== 'string' || !p.image_url) {
      throw invalid(`${param}[${i}]`, 'Only input_image parts with an `image_url` (an https or data: URL) are supported; `file_id` is not', 'unsupported_content');
    }
    const problem = imageUrlProblem(p.image_url);
    if (problem) throw invalid(`${param}[${i}].image_url`, `Invalid image_url: ${problem}`);
    return { type: 'image', url: p.image_url, ...(typeof p.detail === 'string' ? { detail: p.detail } : {}) };
  });
  return { role: 'user', content: parts.flatMap((p) => (p.type === 'text' ? [p.text] : [])).join(''), parts };
}

/**
 * The items as Parley's messages: function calls join the assistant turn they belong to. The first
 * `carried` items are those previous_response_id brought; the caller's own are named by their place
 * in its `input`.
 */
export function toMessages(items: Item[], carried = 0): ChatMessage[] {
  const messages: ChatMessage[] = [];
  /** Function calls not answered yet, by call_id, with the param that named each. */
  const unanswered = new Map<string, string>();
  items.forEach((raw, i) => {
    const param = i < carried ? 'previous_response_id' : `input[${i - carried}]`;
    const type = raw.type ?? (raw.role !== undefined ? 'message' : undefined);
    if (type === 'message') {
      const m = parse(messageItem, raw, param);
      if (m.role === 'user') return void messages.push(userMessage(m.content, `${param}.content`));
      const text = typeof m.content === 'string' ? m.content : partsText(m.content, `${param}.content`);
      messages.push({ role: m.role === 'assistant' ? 'assistant' : 'system', content: text });
    } else if (type === 'function_call') {
      const c = parse(functionCallItem, raw, param);
      const call: ToolCall = { id: c.call_id, name: c.name, arguments: c.arguments };
      unanswered.set(c.call_id, param);
      const last = messages.at(-1);
      if (last?.role === 'assistant') last.toolCalls = [...(last.toolCalls ?? []), call];
      else messages.push({ role: 'assistant', content: '', toolCalls: [call] });
    } else if (type === 'function_call_output') {
      const o = parse(functionCallOutputItem, raw, param);
      // As OpenAI answers it: an output answers a call made before it (a provider would refuse it, or a lenient one guess).
      if (!unanswered.delete(o.call_id)) throw invalid(`${param}.call_id`, `No tool call found for function call output with call_id ${o.call_id}.`);
      messages.push({ role: 'tool', toolCallId: o.call_id, content: typeof o.output === 'string' ? o.output : partsText(o.output, `${param}.output`) });
    } else if (type === 'reasoning') {
      // Reasoning items a client echoes back carry nothing another provider can use; input_items lists them, so their id is checked too.
      parse(reasoningItem, raw, param);
    } else {
      throw invalid(`${param}.type`, `Input item type "${String(type)}" is not supported by Parley: send messages, function_call and function_call_output items`, 'unsupported_input_item');
    }
  });
  const [first] = unanswered;
  if (first) throw invalid(first[1], `No tool output found for function call ${first[0]}.`);
  return messages;
}

/** What the model is given, the conversation's messages (instructions first, as a system message) and the tools. */
export function promptOf(body: Pick<ResponseBody, 'instructions' | 'tools'>, items: Item[], carried = 0): { messages: ChatMessage[]; tools: ToolDefinition[] | undefined } {
  const conversation = toMessages(items, carried);
  return { messages: body.instructions ? [{ role: 'system', content: body.instructions }, ...conversation] : conversation, tools: toolDefinitions(body.tools) };
}

/** The ChatRequest (minus chain) for the whole conversation. */
export function toChatRequest(body: ResponseBody, items: Item[], carried = 0): Omit<ChatRequest, 'chain'> {
  const { messages, tools } = promptOf(body, items, carried);
  if (!messages.some((m) => m.role !== 'system')) throw invalid('input', 'input is required: a string or at least one message', 'missing_required_parameter');
  return {
    messages,
    temperature: body.temperature ?? undefined,
    topP: body.top_p ?? undefined,
    maxTokens: body.max_output_tokens ?? undefined,
    tools,
    toolChoice: toolChoice(body.tool_choice, tools),
    responseFormat: body.text?.format ? responseFormatOf(body.text.format) : undefined,
  };
}

function responseFormatOf(format: TextFormat): ChatRequest['responseFormat'] {
  if (format.type === 'text') return undefined;
  return { ...jsonResponseFormat(format.type === 'json_schema' ? format : undefined), param: 'text.format' };
}

/** The output format as OpenAI echoes it in the response object. */
function echoedFormat(format: TextFormat | undefined) {
  if (format?.type !== 'json_schema') return { type: format?.type ?? 'text' };
  return { type: format.type, name: format.name, description: format.description ?? null, schema: format.schema, strict: format.strict ?? null };
}

export const newId = (prefix: 'resp' | 'msg' | 'fc') => `${prefix}_${randomBytes(24).toString('hex')}`;

export function messageItemOf(id: string, text: string, status: 'in_progress' | 'completed' | 'incomplete') {
  return { id, type: 'message' as const, status, role: 'assistant' as const, content: status === 'in_progress' && !text ? [] : [outputText(text)] };
}

export const outputText = (text: string) => ({ type: 'output_text' as const, annotations: [] as unknown[], logprobs: [] as unknown[], text });

export function functionCallItemOf(id: string, call: ToolCall, status: 'in_progress' | 'completed') {
  return { id, type: 'function_call' as const, status, arguments: status === 'completed' ? call.arguments : '', call_id: call.id, name: call.name };
}

export function responsesUsage(usage: Usage) {
  return {
    input_tokens: usage.inputTokens,
    input_tokens_details: { cached_tokens: usage.cachedTokens ?? 0 },
    output_tokens: usage.outputTokens,
    output_tokens_details: { reasoning_tokens: 0 },
    total_tokens: usage.inputTokens + usage.outputTokens,
  };
}

/** Why a finished answer is `incomplete`, or null when it completed. */
export function incompleteReason(finishReason: string): 'max_output_tokens' | 'content_filter' | null {
  if (finishReason === 'length') return 'max_output_tokens';
  if (finishReason === 'content-filter') return 'content_filter';
  return null;
}

export interface ResponseState {
  id: string;
  createdAt: number;
  /** Seconds, once it completed. */
  completedAt: number | null;
  status: 'in_progress' | 'completed' | 'incomplete' | 'failed';
  model: string;
  output: Item[];
  usage: ReturnType<typeof responsesUsage> | null;
  error: { code: string; message: string } | null;
  incompleteReason: string | null;
  previousResponseId: string | null;
  store: boolean;
}

/** The response object, echoing the request's settings as OpenAI does. */
export function responseObject(state: ResponseState, body: ResponseBody) {
  return {
    id: state.id,
    object: 'response' as const,
    created_at: state.createdAt,
    completed_at: state.completedAt,
    status: state.status,
    background: false,
    error: state.error,
    incomplete_details: state.incompleteReason ? { reason: state.incompleteReason } : null,
    instructions: body.instructions ?? null,
    max_output_tokens: body.max_output_tokens ?? null,
    metadata: body.metadata ?? {},
    model: state.model,
    output: state.output,
    parallel_tool_calls: body.parallel_tool_calls ?? true,
    previous_response_id: state.previousResponseId,
    reasoning: { effort: null, summary: null },
    store: state.store,
    temperature: body.temperature ?? null,
    text: { format: echoedFormat(body.text?.format) },
    tool_choice: body.tool_choice ?? 'auto',
    tools: (body.tools ?? []).map((t) => ({ type: 'function', name: t.name, description: t.description ?? null, parameters: t.parameters ?? null, strict: t.strict ?? null })),
    top_p: body.top_p ?? null,
    truncation: 'disabled',
    usage: state.usage,
    user: body.user ?? null,
  };
}

export type ResponseObject = ReturnType<typeof responseObject>;

/** Parley's error as the `error` of a failed response (OpenAI's codes there are few: any upstream failure is a server_error). */
export const failure = (err: unknown) => ({
  code: 'server_error',
  message: err instanceof AppError ? err.message : 'The response failed on our side',
});
