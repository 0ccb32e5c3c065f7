import { createRequire } from 'node:module';
import type { CallWarning, ImagePart, JSONSchema7, LanguageModel, ModelMessage, TextPart, ToolSet } from 'ai';
import { AttemptError, invalidRequest } from './attempt-error.ts';
import { formatParam, type ChatMessage, type ChatPart, type ChatRequest, type ToolCall, type Usage } from './types.ts';

/**
 * What one model's stream is made of, whichever driver produced it:
 * `progress` is output that is not text (reasoning, a tool call's pieces),
 * which keeps the attempt's timers alive without reaching the caller.
 */
export type ModelPart =
  | { type: 'text'; text: string }
  | { type: 'progress' }
  | { type: 'tool_call'; call: ToolCall }
  | { type: 'finish'; finishReason: string; usage: Usage | undefined }
  /** The stream stopped because the signal was aborted. */
  | { type: 'abort' };

/**
 * One provider's model, able to stream a chat. Drivers throw whatever their
 * transport throws; the attempt classifies it (attempt-error.ts).
 */
export interface ChatModel {
  /** `alive` is told of output that goes straight to `request.relay` rather than through a part. */
  stream(request: ChatRequest, signal: AbortSignal, alive?: () => void): AsyncIterable<ModelPart>;
  /** Asks its upstream for the whole answer at once when `request.whole` is set: its parts then all come at the end. */
  answersWhole?: boolean;
}

/** The AI SDK, loaded where a provider uses it (Anthropic, Mistral): a server without one need not hold it. */
export const aiSdk = () => createRequire(import.meta.url)('ai') as typeof import('ai');

/** A model as its provider package builds it (the current specification), which middleware can wrap. */
type ProviderModel = Extract<LanguageModel, { specificationVersion: 'v3' }>;

/**
 * The response formats a provider's API can honour: JSON with a schema (OpenAI's `json_schema`), JSON
 * without one (`json_object`).
 */
export interface ResponseFormats {
  schemaless: boolean;
}

/**
 * A model behind the AI SDK's streamText, with its own retries off (the fallback engine retries).
 * `formats`: what its provider honours (providers.ts).
 */
export function aiSdkChatModel(model: ProviderModel, formats: ResponseFormats): ChatModel {
  const { streamText } = aiSdk();
  return {
    async *stream(request, signal) {
      if (request.responseFormat) refuseUnsupportedFormat(request.responseFormat, formats, model.provider);
      const result = streamText({
        model: request.responseFormat ? withResponseFormat(model, request.responseFormat) : model,
        messages: toModelMessages(request.messages),
        allowSystemInMessages: true,
        tools: toToolSet(request),
        toolChoice: request.toolChoice && typeof request.toolChoice === 'object' ? { type: 'tool', toolName: request.toolChoice.name } : request.toolChoice,
        temperature: request.temperature,
        // Each SDK provider drops (with a warning) what its API refuses: Mistral topK, Anthropic topP beside temperature.
        topP: request.topP,
        topK: request.topK,
        maxOutputTokens: request.maxTokens,
        stopSequences: request.stop,
        maxRetries: 0,
        abortSignal: signal,
        // Errors arrive as 'error' parts below; the default handler would also print them to stderr.
        onError: () => {},
      });
      const toolInputs = new Map<string, string>();
      for await (const part of result.fullStream) {
        switch (part.type) {
          case 'start-step':
            if (request.responseFormat) refuseIgnoredFormat(request.responseFormat, part.warnings, model.provider);
            break;
          case 'text-delta':
            if (part.text) yield { type: 'text', text: part.text };
            break;
          case 'reasoning-delta':
          case 'tool-input-start':
            yield { type: 'progress' };
            break;
          case 'tool-input-delta':
            toolInputs.set(part.id, (toolInputs.get(part.id) ?? '') + part.delta);
            yield { type: 'progress' };
            break;
          case 'tool-call': {
            // The raw JSON text as streamed, when there was one; the parsed input re-serialised otherwise.
            const raw = toolInputs.get(part.toolCallId);
            yield { type: 'tool_call', call: { id: part.toolCallId, name: part.toolName, arguments: raw || JSON.stringify(part.input ?? {}) } };
            break;
          }
          case 'error':
            throw part.error;
          case 'abort':
            yield { type: 'abort' };
            return;
          case 'finish': {
            const u = part.totalUsage;
            let usage: Usage | undefined;
            if (u.inputTokens !== undefined || u.outputTokens !== undefined) {
              const cached = u.inputTokenDetails?.cacheReadTokens ?? u.cachedInputTokens;
              usage = { inputTokens: u.inputTokens ?? 0, outputTokens: u.outputTokens ?? 0, ...(cached ? { cachedTokens: cached } : {}) };
            }
            yield { type: 'finish', finishReason: part.finishReason, usage };
            break;
          }
        }
      }
    },
  };
}

/**
 * The model with the response format as the AI SDK's `responseFormat` call option, which each provider
 * implements its own way (Anthropic: its structured output, or a forced `json` tool whose input comes back
 * as the text; Mistral: `response_format`). streamText would set it only through `output`, which also parses
 * the text so far as partial JSON at every chunk, work nobody here reads.
 */
function withResponseFormat(model: ProviderModel, format: NonNullable<ChatRequest['responseFormat']>): ProviderModel {
  const { defaultSettingsMiddleware, wrapLanguageModel } = aiSdk();
  const responseFormat = { type: 'json' as const, schema: format.schema as JSONSchema7 | undefined, name: format.name, description: format.description };
  // Mistral's strict mode is a provider option; other providers ignore another's options.
  const providerOptions = format.strict ? { mistral: { strictJsonSchema: true } } : undefined;
  return wrapLanguageModel({ model, middleware: defaultSettingsMiddleware({ settings: { responseFormat, providerOptions } }) });
}

/**
 * A format the provider is known not to honour fails this link before anything is sent (the AI SDK would
 * tell only once the provider has started answering, the call made and perhaps billed), as a request it
 * cannot take: the next link may honour it (see fallback.ts).
 */
function refuseUnsupportedFormat(format: NonNullable<ChatRequest['responseFormat']>, formats: ResponseFormats, provider: string) {
  if (format.schema || formats.schemaless) return;
  throw unsupportedFormat(`${formatParam(format)} is not supported by ${provider} without a schema (json_object): it takes json_schema`);
}

/**
 * The backstop for what refuseUnsupportedFormat does not know of: a provider that cannot honour the response
 * format says so in a call warning and answers in free text; this link fails instead, before any of that
 * text, as a request it cannot take: the next link may honour it (see fallback.ts).
 */
function refuseIgnoredFormat(format: NonNullable<ChatRequest['responseFormat']>, warnings: CallWarning[], provider: string) {
  const ignored = warnings.find((w) => w.type === 'unsupported' && w.feature === 'responseFormat');
  if (!ignored) return;
  const details = ignored.type === 'unsupported' && ignored.details ? ` (the AI SDK says: "${ignored.details}")` : '';
  throw unsupportedFormat(`${formatParam(format)} is not supported by ${provider}${details}`);
}

const unsupportedFormat = (message: string) => new AttemptError('unsupported_parameter', message, { retryable: false, started: false });

/** Parley's messages in the AI SDK's shape; a tool result needs the name of the call it answers. */
export function toModelMessages(messages: ChatMessage[]): ModelMessage[] {
  const toolNames = new Map<string, string>();
  return messages.map((m): ModelMessage => {
    switch (m.role) {
      case 'system':
        return { role: 'system', content: m.content };
      case 'user':
        return { role: 'user', content: m.parts ? m.parts.map(modelPart) : m.content };
      case 'assistant': {
        if (!m.toolCalls?.length) return { role: 'assistant', content: m.content };
        for (const c of m.toolCalls) toolNames.set(c.id, c.name);
        return {
          role: 'assistant',
          content: [
            ...(m.content ? [{ type: 'text' as const, text: m.content }] : []),
            ...m.toolCalls.map((c) => ({ type: 'tool-call' as const, toolCallId: c.id, toolName: c.name, input: parseArguments(c.arguments) })),
          ],
        };
      }
      case 'tool':
        return {
          role: 'tool',
          content: [{ type: 'tool-result', toolCallId: m.toolCallId ?? '', toolName: toolNames.get(m.toolCallId ?? '') ?? 'unknown', output: { type: 'text', value: m.content } }],
        };
    }
  });
}

const DATA_URL = /^data:([^;,]+);base64,(.*)$/s;

/** An image as the AI SDK takes it: base64 with its media type (Anthropic: a base64 `image` source), or a link. */
function modelPart(p: ChatPart): TextPart | ImagePart {
  if (p.type === 'text') return { type: 'text', text: p.text };
  const data = DATA_URL.exec(p.url);
  if (data) return { type: 'image', image: data[2]!, mediaType: data[1] };
  // The gateway checks image URLs at the door; one that got past is the request's fault, not the provider's.
  if (!URL.canParse(p.url)) throw invalidRequest('An image URL is not a URL');
  return { type: 'image', image: new URL(p.url) };
}

function parseArguments(text: string): unknown {
  try {
    return JSON.parse(text || '{}');
  } catch {
    return {};
  }
}

/** Tools without `execute`: the model's calls come back to the caller instead of running here. */
function toToolSet(request: ChatRequest): ToolSet | undefined {
  if (!request.tools?.length) return undefined;
  const { jsonSchema, tool } = aiSdk();
  const set: ToolSet = {};
  for (const t of request.tools) set[t.name] = tool({ description: t.description, inputSchema: jsonSchema(t.parameters as never) });
  return set;
}
