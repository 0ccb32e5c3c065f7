import { randomUUID } from 'node:crypto';
import { MalformedChunk, UpstreamConnectionLost } from './attempt-error.ts';
import type { ChatModel, ModelPart } from './chat-model.ts';
import { createSseParser } from './sse-parser.ts';
import { createUpstreamHttp, postStream, postWhole, type UpstreamStream } from './upstream-http.ts';
import type { ChatMessage, ChatPart, ChatRequest, ChunkRelay, ToolCall, Usage } from './types.ts';

/**
 * A lean driver for OpenAI's Chat Completions wire protocol (OpenAI itself,
 * OpenRouter, Ollama, vLLM and other compatible servers): undici's
 * dispatcher with keep-alive sockets (upstream-http.ts), an incremental SSE
 * parser and one JSON.parse per data line. It replaces the AI SDK for these
 * upstreams because the SDK's per-chunk path (web streams, per-chunk schema
 * validation, telemetry spans) cost tens of µs a chunk, which saturated a core
 * at a few hundred concurrent streams (see README, Performance). Behind the gateway, text
 * frames after the first output skip even that parse: they are relayed as
 * bytes (ChunkRelay). A caller that wants the answer only whole
 * (ChatRequest.whole) gets it asked for without a stream: one read and one
 * parse instead of one per token. Errors are thrown as the
 * transport types that attempt-error.ts classifies, as it does the SDK's.
 */
export interface ChatCompletionsEndpoint {
  /** Up to and including the version, e.g. `https://api.openai.com/v1`. */
  baseUrl: string;
  apiKey?: string;
  /**
   * OpenAI's own API: its reasoning models take `developer` messages and `max_completion_tokens`, no
   * temperature or top_p; and it refuses `top_k`, which it does not have. Compatible servers (vLLM,
   * Ollama, llama.cpp, OpenRouter…) get `top_k` when the caller sets it: they sample with it, or ignore it.
   */
  openAiRules: boolean;
}

export function createChatCompletionsDriver() {
  const http = createUpstreamHttp();
  return {
    model(endpoint: ChatCompletionsEndpoint, model: string): ChatModel {
      // Parsed once per model rather than per request.
      const target = http.target(new URL(`${endpoint.baseUrl.replace(/\/+$/, '')}/chat/completions`), endpoint.apiKey);
      const reasoning = endpoint.openAiRules && isOpenAiReasoningModel(model);
      const bodyOf = (request: ChatRequest, whole: boolean) => JSON.stringify(requestBody(model, request, reasoning, !endpoint.openAiRules, whole));
      return {
        answersWhole: true,
        stream(request, signal, alive) {
          // The request is sent when the parts are first read; they come straight from the reader (no wrapping generator).
          if (request.whole) return readWhole(() => postWhole(target, bodyOf(request, true), signal), signal);
          return readStream(() => postStream(target, bodyOf(request, false), signal), signal, request.relay, alive);
        },
      };
    },
  };
}

export type ChatCompletionsDriver = ReturnType<typeof createChatCompletionsDriver>;

/** As the AI SDK decides it: o-series, and GPT-5 and later except the `-chat` variants. */
function isOpenAiReasoningModel(model: string): boolean {
  if (/^o\d+(?:-|$)/.test(model)) return true;
  const gpt = /^gpt-(\d+)(?:\.(\d+))?(?:-(.+))?$/.exec(model);
  if (!gpt) return false;
  const chat = gpt[2] === undefined && (gpt[3]?.startsWith('chat') ?? false);
  return Number(gpt[1]) >= 5 && !chat;
}

function requestBody(model: string, request: ChatRequest, reasoning: boolean, takesTopK: boolean, whole: boolean) {
  const body: Record<string, unknown> = { model, messages: wireMessages(request.messages, reasoning) };
  if (!whole) {
    body.stream = true;
    body.stream_options = { include_usage: true };
  }
  if (request.temperature !== undefined && !reasoning) body.temperature = request.temperature;
  if (request.topP !== undefined && !reasoning) body.top_p = request.topP;
  if (request.topK !== undefined && takesTopK) body.top_k = request.topK;
  if (request.maxTokens !== undefined) body[reasoning ? 'max_completion_tokens' : 'max_tokens'] = request.maxTokens;
  // OpenAI's reasoning models refuse `stop`.
  if (request.stop?.length && !reasoning) body.stop = request.stop;
  if (request.tools?.length) {
    body.tools = request.tools.map((t) => ({ type: 'function', function: { name: t.name, description: t.description, parameters: t.parameters } }));
    const choice = request.toolChoice;
    if (choice !== undefined) body.tool_choice = typeof choice === 'string' ? choice : { type: 'function', function: { name: choice.name } };
  }
  if (request.responseFormat) body.response_format = wireResponseFormat(request.responseFormat);
  return body;
}

/** OpenAI's `response_format`: `json_schema` when the caller named one (or gave a schema), `json_object` otherwise. */
function wireResponseFormat(format: NonNullable<ChatRequest['responseFormat']>) {
  if (format.name === undefined && format.schema === undefined) return { type: 'json_object' };
  // Fields left undefined are left out by JSON.stringify.
  return { type: 'json_schema', json_schema: { name: format.name ?? 'response', description: format.description, schema: format.schema, strict: format.strict } };
}

function wireMessages(messages: ChatMessage[], reasoning: boolean) {
  return messages.map((m) => {
    switch (m.role) {
      case 'system':
        return { role: reasoning ? 'developer' : 'system', content: m.content };
      case 'user':
        return { role: 'user', content: m.parts ? m.parts.map(wirePart) : m.content };
      case 'assistant':
        if (!m.toolCalls?.length) return { role: 'assistant', content: m.content };
        return {
          role: 'assistant',
          content: m.content,
          tool_calls: m.toolCalls.map((c) => ({ id: c.id, type: 'function', function: { name: c.name, arguments: c.arguments || '{}' } })),
        };
      case 'tool':
        return { role: 'tool', tool_call_id: m.toolCallId ?? '', content: m.content };
    }
  });
}

/** OpenAI's content parts: images as `image_url` (a data: URL or a link), as the gateway received them. */
function wirePart(p: ChatPart) {
  if (p.type === 'text') return { type: 'text', text: p.text };
  return { type: 'image_url', image_url: { url: p.url, ...(p.detail !== undefined ? { detail: p.detail } : {}) } };
}

interface PendingCall {
  id: string;
  name: string;
  arguments: string;
}

/**
 * Chat Completions chunks to model parts: text as it comes, tool calls once
 * complete, then the finish. With a relay, once a first text part has been
 * taken (the link has answered, so no fallback can follow), plain text frames
 * go to the relay as they came, without a parse or a part each; the rest of
 * the stream still becomes parts, in order. A piece that is nothing but such
 * frames is relayed as it arrives (the stream's `tap`), without waking this
 * reader.
 */
async function* readStream(open: () => Promise<UpstreamStream>, signal: AbortSignal, relay?: ChunkRelay, alive?: () => void): AsyncGenerator<ModelPart> {
  const res = await open();
  const datas: string[] = [];
  const parser = createSseParser((data) => datas.push(data));
  const calls: PendingCall[] = [];
  let finishReason = 'other';
  let usage: Usage | undefined;
  let done = false;
  let relaying = false;
  // Frames that end in CR or CRLF are the parser's alone, for the rest of the stream.
  let lfOnly = true;
  // While relaying: the end of the last piece, a frame not complete yet (the parser only ever gets whole frames then).
  let pending = '';
  /**
   * Relays the leading plain text frames of a piece (with what was pending) and keeps its incomplete
   * end; returns the complete frames after them, for the parser. With `onlyAll`, a piece whose complete
   * frames are not all relayable is left untouched (false), for the reader to take as it came.
   */
  const relayPiece = (piece: string, onlyAll: boolean): string | false => {
    const text = pending + piece;
    const boundary = text.lastIndexOf('\n\n');
    if (boundary === -1) {
      pending = text;
      return '';
    }
    const end = boundary + 2;
    const head = relayable(text, end);
    if (onlyAll && head.end < end) return false;
    pending = text.slice(end);
    if (head.end > 0) {
      relay!.text += head.content;
      alive?.();
      // A client reading slowly: the upstream is not read on until its socket drains.
      if (!relay!.forward(head.end === text.length ? text : text.slice(0, head.end), head.content)) {
        res.pause();
        void relay!.drained().then(() => res.resume());
      }
    }
    return text.slice(head.end, end);
  };
  const tap = (piece: string) => !piece.includes('\r') && relayPiece(piece, true) !== false;
  const setRelaying = (on: boolean) => {
    relaying = on;
    res.tap = on ? tap : undefined;
  };
  try {
    for (let piece = await res.next(); piece !== undefined; piece = await res.next()) {
      if (!relaying) parser.push(piece);
      else if (piece.includes('\r')) {
        setRelaying((lfOnly = false));
        parser.push(pending + piece);
        pending = '';
      } else {
        const frames = relayPiece(piece, false);
        if (frames) parser.push(frames);
      }
      // The text of every chunk in this piece goes on as one part: a busy process that reads
      // several chunks at once then forwards them at once, instead of paying per chunk.
      let text = '';
      let progress = false;
      let failure: unknown;
      try {
        for (let i = 0; i < datas.length && !done; i++) {
          const data = datas[i]!;
          if (data === '[DONE]') {
            done = true;
            break;
          }
          // Most chunks are text alone: read without a parse (JSON.parse of each was most of this loop's time).
          const plain = plainContent(data);
          if (plain !== undefined) {
            text += plain;
            continue;
          }
          const chunk = parseWire<WireChunk>(data, 'chunk');
          if (chunk.usage) usage = usageOf(chunk.usage);
          const choice = chunk.choices?.[0];
          if (!choice) continue;
          const delta = choice.delta;
          if (delta) {
            if (typeof delta.content === 'string') text += delta.content;
            if (delta.reasoning_content || delta.reasoning) progress = true;
            if (delta.tool_calls) {
              for (const d of delta.tool_calls) {
                const index = d.index ?? calls.length;
                const call = (calls[index] ??= { id: d.id ?? `call_${randomUUID()}`, name: '', arguments: '' });
                if (d.id) call.id = d.id;
                if (d.function?.name) call.name = d.function.name;
                if (d.function?.arguments) call.arguments += d.function.arguments;
              }
              progress = true;
            }
          }
          if (choice.finish_reason) finishReason = FINISH_REASONS[choice.finish_reason] ?? 'other';
        }
      } catch (err) {
        // What came before the bad chunk still reaches the caller, then the failure.
        failure = err;
      }
      datas.length = 0;
      if (text) {
        yield { type: 'text', text };
        // Taken and written: what follows can go straight on, unless a high surrogate ends it (the attempt holds that back for its other half).
        if (relay && lfOnly && !failure && !done) {
          const last = text.charCodeAt(text.length - 1);
          const canRelay = last < 0xd800 || last > 0xdbff;
          if (canRelay !== relaying) {
            setRelaying(canRelay);
            if (!relaying && pending) {
              parser.push(pending);
              pending = '';
            }
          }
        }
      } else if (progress) yield { type: 'progress' };
      if (failure) throw failure;
    }
  } catch (err) {
    if (signal.aborted || err instanceof MalformedChunk || err instanceof UpstreamConnectionLost) throw err;
    // Reading a field of a chunk whose shape is not the protocol's (tool_calls not a list…).
    if (err instanceof TypeError) throw new MalformedChunk(err.message);
    throw err;
  } finally {
    parser.end();
    // Leaving early (the consumer stopped, a bad chunk): this connection is in an unknown state, drop it.
    res.close();
  }
  if (signal.aborted) {
    yield { type: 'abort' };
    return;
  }
  for (const call of calls) if (call) yield { type: 'tool_call', call: { id: call.id, name: call.name, arguments: call.arguments || '{}' } satisfies ToolCall };
  yield { type: 'finish', finishReason, usage };
}

/**
 * A whole `chat.completion` (the upstream asked without `stream`) to the same
 * parts a stream gives: its text, its tool calls, then the finish.
 */
async function* readWhole(open: () => Promise<string>, signal: AbortSignal): AsyncGenerator<ModelPart> {
  const text = await open();
  if (signal.aborted) {
    yield { type: 'abort' };
    return;
  }
  const answer = parseWire<WireCompletion>(text, 'answer');
  const choice = answer.choices?.[0];
  if (!choice || typeof choice !== 'object') throw new MalformedChunk('The answer has no choice');
  const message = choice.message ?? {};
  if (typeof message.content === 'string' && message.content) yield { type: 'text', text: message.content };
  for (const c of message.tool_calls ?? []) {
    if (typeof c?.function?.name !== 'string') throw new MalformedChunk('A tool call has no function name');
    yield { type: 'tool_call', call: { id: typeof c.id === 'string' && c.id ? c.id : `call_${randomUUID()}`, name: c.function.name, arguments: c.function.arguments || '{}' } };
  }
  yield { type: 'finish', finishReason: (choice.finish_reason && FINISH_REASONS[choice.finish_reason]) || 'other', usage: answer.usage ? usageOf(answer.usage) : undefined };
}

/** A chunk's or an answer's JSON: a MalformedChunk when it is not a JSON object; the provider's own error thrown as such. */
function parseWire<T extends { error?: { message?: unknown } }>(json: string, what: 'chunk' | 'answer'): T {
  let value: T;
  try {
    value = JSON.parse(json);
  } catch {
    throw new MalformedChunk(`A ${what} is not JSON`);
  }
  if (typeof value !== 'object' || value === null) throw new MalformedChunk(`A ${what} is not an object`);
  if (value.error) throw new Error(`The provider reported an error${what === 'chunk' ? ' mid-stream' : ''}: ${String(value.error.message ?? 'unknown').slice(0, 300)}`);
  return value;
}

/**
 * The leading frames of `text` (up to `end`, a frame boundary) that are plain
 * text chunks, with their text: one `data: {…}` line each with a string
 * `content`, `finish_reason: null` and no tool calls, reasoning, usage or
 * error, which need the parser. Keys are matched with their quotes, which a
 * JSON string value cannot contain unescaped, so text that looks like a key
 * never matches.
 */
function relayable(text: string, end: number): { end: number; content: string } {
  let at = 0;
  let content = '';
  while (at < end) {
    const stop = text.indexOf('\n', at);
    if (stop === -1 || stop + 1 >= end || text.charCodeAt(stop + 1) !== 10) break;
    const piece = frameContent(text.slice(at, stop));
    if (piece === undefined) break;
    content += piece;
    at = stop + 2;
  }
  return { end: at, content };
}

function frameContent(frame: string): string | undefined {
  return frame.startsWith('data: ') ? plainContent(frame.slice(6)) : undefined;
}

/**
 * The text of a plain text chunk (a data line's JSON, as `frameContent` describes it), or undefined for
 * any other chunk, which needs the parser.
 */
function plainContent(data: string): string | undefined {
  if (!data.startsWith('{"') || data.charCodeAt(data.length - 1) !== 125 /* } */) return undefined;
  if (!data.includes('"finish_reason":null') || data.includes('"tool_calls"') || data.includes('"reasoning') || data.includes('"error"') || data.includes('"usage":{')) return undefined;
  const start = data.indexOf('"content":"');
  if (start === -1) return undefined;
  let escaped = false;
  let i = start + 11;
  for (; i < data.length; i++) {
    const c = data.charCodeAt(i);
    if (c === 34 /* " */) break;
    if (c === 92 /* \ */) {
      escaped = true;
      i++;
    }
  }
  if (i >= data.length) return undefined;
  const raw = data.slice(start + 11, i);
  // A NUL is the parser's, so that the attempt drops it (see wellFormedText) instead of relaying it.
  if (!escaped) return raw.includes('\0') ? undefined : raw;
  try {
    const text = JSON.parse(`"${raw}"`) as string;
    // Half a surrogate pair (escaped: decoded bytes never hold one) is the parser's too: it joins a pair split
    // between two chunks and makes a lone half U+FFFD, which relaying the frame as it came would not.
    return text.includes('\0') || !text.isWellFormed() ? undefined : text;
  } catch {
    return undefined;
  }
}

/** OpenAI's finish reasons in the AI SDK's vocabulary, which the rest of Parley speaks. */
const FINISH_REASONS: Record<string, string> = { stop: 'stop', length: 'length', content_filter: 'content-filter', tool_calls: 'tool-calls', function_call: 'tool-calls' };

function usageOf(u: WireUsage): Usage | undefined {
  if (u.prompt_tokens == null && u.completion_tokens == null) return undefined;
  const cached = u.prompt_tokens_details?.cached_tokens;
  return { inputTokens: u.prompt_tokens ?? 0, outputTokens: u.completion_tokens ?? 0, ...(cached ? { cachedTokens: cached } : {}) };
}

interface WireUsage {
  prompt_tokens?: number | null;
  completion_tokens?: number | null;
  prompt_tokens_details?: { cached_tokens?: number | null } | null;
}

interface WireChunk {
  choices?: Array<{
    delta?: {
      content?: string | null;
      reasoning_content?: string | null;
      reasoning?: string | null;
      tool_calls?: Array<{ index?: number; id?: string; function?: { name?: string; arguments?: string } }>;
    } | null;
    finish_reason?: string | null;
  }>;
  usage?: WireUsage | null;
  error?: { message?: unknown };
}

interface WireCompletion {
  choices?: Array<{
    message?: { content?: string | null; tool_calls?: Array<{ id?: string; function?: { name?: string; arguments?: string } }> | null } | null;
    finish_reason?: string | null;
  }>;
  usage?: WireUsage | null;
  error?: { message?: unknown };
}
