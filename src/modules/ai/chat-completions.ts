import { randomUUID } from 'node:crypto';
import { Agent as HttpAgent, request as httpRequest, type IncomingMessage, type OutgoingHttpHeaders, type RequestOptions } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import { StringDecoder } from 'node:string_decoder';
import { Agent as UndiciAgent, type Dispatcher } from 'undici';
import { MalformedChunk, UpstreamConnectionLost, UpstreamStatusError, UpstreamUnreachable } from './attempt-error.ts';
import type { ChatModel, ModelPart } from './chat-model.ts';
import { createSseParser } from './sse-parser.ts';
import type { ChatMessage, ChatPart, ChatRequest, ChunkRelay, ToolCall, Usage } from './types.ts';

/**
 * A lean driver for OpenAI's Chat Completions wire protocol (OpenAI itself,
 * OpenRouter, Ollama, vLLM and other compatible servers): node:http(s) with
 * keep-alive sockets, an incremental SSE parser and one JSON.parse per data
 * line. It replaces the AI SDK for these upstreams because the SDK's
 * per-chunk path (web streams, per-chunk schema validation, telemetry spans)
 * cost tens of µs a chunk, which saturated a core at a few hundred
 * concurrent streams (see README, Performance). Behind the gateway, text
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

/** Longest error body read from a failed response; only its message is kept. */
const ERROR_BODY_LIMIT = 64 * 1024;

export function createChatCompletionsDriver() {
  // Idle keep-alive sockets are unref'd by the agents: they never hold the process open. With a
  // `timeout` set, the agents also honour the server's `Keep-Alive: timeout=N` hint and drop an
  // idle socket a second before the server would (only idle sockets are destroyed on timeout).
  // Up to 1,024 idle sockets per upstream host (Node keeps 256): when a burst of streams ends
  // together, the next burst finds its connections (and TLS sessions) open instead of dialling.
  const options = { keepAlive: true, timeout: 60_000, maxFreeSockets: 1024 };
  const agents = { http: new HttpAgent(options), https: new HttpsAgent(options) };
  // Whole answers go through undici's dispatcher: one callback per piece read, no stream objects in
  // between, about half node:http's CPU for a call (bench harness). Its own timeouts are off: the
  // attempt's answer timeout bounds the call. Idle sockets are kept as long as the agents above keep theirs.
  const dispatcher = new UndiciAgent({ keepAliveTimeout: 60_000, headersTimeout: 0, bodyTimeout: 0 });
  return {
    model(endpoint: ChatCompletionsEndpoint, model: string): ChatModel {
      const url = new URL(`${endpoint.baseUrl.replace(/\/+$/, '')}/chat/completions`);
      const agent = url.protocol === 'https:' ? agents.https : agents.http;
      // Parsed once per model rather than per request.
      const target: Target = {
        send: url.protocol === 'https:' ? httpsRequest : httpRequest,
        options: { protocol: url.protocol, hostname: url.hostname.replace(/^\[(.*)\]$/, '$1'), port: url.port || undefined, path: url.pathname + url.search, method: 'POST', agent },
      };
      if (url.username) target.options.auth = `${decodeURIComponent(url.username)}:${decodeURIComponent(url.password)}`;
      // As node:http's `auth` does it: Basic from the URL's credentials, unless a key is sent.
      const authorization = endpoint.apiKey ? `Bearer ${endpoint.apiKey}` : target.options.auth ? `Basic ${Buffer.from(target.options.auth).toString('base64')}` : undefined;
      const whole: WholeTarget = { dispatcher, origin: url.origin, path: url.pathname + url.search };
      const reasoning = endpoint.openAiRules && isOpenAiReasoningModel(model);
      const headersFor = (body: string, accept: string) => {
        const headers: Record<string, string> = { 'content-type': 'application/json', accept, 'content-length': String(Buffer.byteLength(body)) };
        if (authorization) headers.authorization = authorization;
        return headers;
      };
      return {
        answersWhole: true,
        stream(request, signal, alive) {
          // The request is sent when the parts are first read; they come straight from the reader (no wrapping generator).
          if (request.whole) {
            return readWhole(async () => {
              const body = JSON.stringify(requestBody(model, request, reasoning, !endpoint.openAiRules, true));
              const answer = await postWhole(whole, headersFor(body, 'application/json'), body, signal);
              if (answer.status < 200 || answer.status >= 300) throw statusErrorOf(answer.status, answer.headers, answer.text, answer.statusText);
              return answer.text;
            }, signal);
          }
          return readStream(async () => {
            const body = JSON.stringify(requestBody(model, request, reasoning, !endpoint.openAiRules, false));
            const res = await post(target, headersFor(body, 'text/event-stream'), body, signal);
            const status = res.statusCode ?? 0;
            if (status < 200 || status >= 300) throw await statusError(res, status);
            return res;
          }, signal, request.relay, alive);
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
  if (request.tools?.length) {
    body.tools = request.tools.map((t) => ({ type: 'function', function: { name: t.name, description: t.description, parameters: t.parameters } }));
    const choice = request.toolChoice;
    if (choice !== undefined) body.tool_choice = typeof choice === 'string' ? choice : { type: 'function', function: { name: choice.name } };
  }
  return body;
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

interface Target {
  send: typeof httpRequest;
  options: RequestOptions;
}

function post(target: Target, headers: OutgoingHttpHeaders, body: string, signal: AbortSignal): Promise<IncomingMessage> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(signal.reason);
    // The signal stops the request and its response by hand: node:http's own `signal` option costs an
    // end-of-stream watcher per request. The listener goes when the exchange is over ('close').
    const req = target.send({ ...target.options, headers }, resolve);
    const onAbort = () => req.destroy(signal.reason instanceof Error ? signal.reason : new DOMException('The operation was aborted', 'AbortError'));
    signal.addEventListener('abort', onAbort, { once: true });
    req.once('close', () => signal.removeEventListener('abort', onAbort));
    req.on('error', (err: NodeJS.ErrnoException) => {
      if (signal.aborted) return reject(err);
      // A pooled keep-alive socket the server had already closed (its keep-alive timeout), noticed
      // only now because a busy event loop had not yet read the FIN: the request never reached the
      // server. Send it again; the dead socket has left the pool. Counting this as a failed attempt
      // would feed the circuit breaker with our own stale sockets.
      if (req.reusedSocket && (err.code === 'ECONNRESET' || err.code === 'EPIPE')) return post(target, headers, body, signal).then(resolve, reject);
      reject(new UpstreamUnreachable(err.code ?? err.message));
    });
    req.end(body);
  });
}

interface WholeTarget {
  dispatcher: Dispatcher;
  origin: string;
  path: string;
}

interface WholeAnswer {
  status: number;
  statusText: string | undefined;
  headers: Record<string, string | string[] | undefined>;
  text: string;
}

/** Longest whole answer read: a runaway or hostile upstream cannot make the process buffer without end. */
const WHOLE_ANSWER_LIMIT = 32 * 1024 * 1024;

/**
 * One POST whose answer is read whole, through undici's dispatch callbacks. Errors as post()'s: the
 * signal's reason when aborted, UpstreamUnreachable before a response, UpstreamConnectionLost after.
 */
function postWhole(target: WholeTarget, headers: Record<string, string>, body: string, signal: AbortSignal): Promise<WholeAnswer> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(signal.reason);
    const answer: WholeAnswer = { status: 0, statusText: undefined, headers: {}, text: '' };
    const decoder = new StringDecoder('utf8');
    let controller: Dispatcher.DispatchController | undefined;
    const onAbort = () => controller?.abort(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    const settle = (err?: unknown) => {
      signal.removeEventListener('abort', onAbort);
      if (err === undefined) return resolve(answer);
      if (signal.aborted) return reject(signal.reason);
      if (err instanceof MalformedChunk) return reject(err);
      const code = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
      reject(answer.status ? new UpstreamConnectionLost(code) : new UpstreamUnreachable(code));
    };
    target.dispatcher.dispatch(
      { origin: target.origin, path: target.path, method: 'POST', headers, body },
      {
        onRequestStart(c) {
          controller = c;
          if (signal.aborted) c.abort(signal.reason);
        },
        onResponseStart(_c, status, responseHeaders, statusText) {
          // 1xx informational answers come first, and are not the answer.
          if (status < 200) return;
          answer.status = status;
          answer.statusText = statusText;
          answer.headers = responseHeaders;
        },
        onResponseData(c, chunk) {
          answer.text += decoder.write(chunk);
          if (answer.text.length > WHOLE_ANSWER_LIMIT) c.abort(new MalformedChunk(`The answer is longer than ${WHOLE_ANSWER_LIMIT} characters`));
        },
        onResponseEnd() {
          answer.text += decoder.end();
          settle();
        },
        onResponseError(_c, err) {
          settle(err);
        },
      },
    );
  });
}

async function statusError(res: IncomingMessage, status: number): Promise<UpstreamStatusError> {
  let text = '';
  try {
    res.setEncoding('utf8');
    for await (const piece of res) {
      text += piece;
      if (text.length > ERROR_BODY_LIMIT) break;
    }
  } catch {
    // The status says enough; the body was a courtesy.
  }
  return statusErrorOf(status, res.headers, text, res.statusMessage);
}

/** A failed answer's status, headers (Retry-After…) and the message of its OpenAI error body, if it has one. */
function statusErrorOf(status: number, raw: Record<string, string | string[] | undefined>, text: string, statusText: string | undefined): UpstreamStatusError {
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(raw)) if (value !== undefined) headers[name] = Array.isArray(value) ? value.join(', ') : value;
  let message: string | undefined;
  try {
    message = (JSON.parse(text.slice(0, ERROR_BODY_LIMIT)) as { error?: { message?: unknown } }).error?.message as string | undefined;
  } catch {}
  return new UpstreamStatusError(status, headers, String(message ?? statusText ?? `HTTP ${status}`).slice(0, 300));
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
 * the stream still becomes parts, in order.
 */
async function* readStream(open: () => Promise<IncomingMessage>, signal: AbortSignal, relay?: ChunkRelay, alive?: () => void): AsyncGenerator<ModelPart> {
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
  res.setEncoding('utf8');
  try {
    for await (const piece of res as AsyncIterable<string>) {
      if (!relaying) parser.push(piece);
      else if (piece.includes('\r')) {
        relaying = lfOnly = false;
        parser.push(pending + piece);
        pending = '';
      } else {
        const text = pending + piece;
        const boundary = text.lastIndexOf('\n\n');
        pending = boundary === -1 ? text : text.slice(boundary + 2);
        if (boundary !== -1) {
          const end = boundary + 2;
          const head = relayable(text, end);
          if (head.end > 0) {
            relay!.text += head.content;
            alive?.();
            if (!relay!.forward(head.end === text.length ? text : text.slice(0, head.end), head.content)) await relay!.drained();
          }
          if (head.end < end) parser.push(text.slice(head.end, end));
        }
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
          let chunk: WireChunk;
          try {
            chunk = JSON.parse(data);
          } catch {
            throw new MalformedChunk('A data line is not JSON');
          }
          if (typeof chunk !== 'object' || chunk === null) throw new MalformedChunk('A chunk is not an object');
          if (chunk.error) throw new Error(`The provider reported an error mid-stream: ${String(chunk.error.message ?? 'unknown').slice(0, 300)}`);
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
            relaying = canRelay;
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
    if (signal.aborted || err instanceof MalformedChunk) throw err;
    const code = (err as NodeJS.ErrnoException).code;
    if (code) throw new UpstreamConnectionLost(code);
    // Reading a field of a chunk whose shape is not the protocol's (tool_calls not a list…).
    if (err instanceof TypeError) throw new MalformedChunk(err.message);
    throw err;
  } finally {
    parser.end();
    // Leaving early (the consumer stopped, a bad chunk): this socket is in an unknown state, drop it.
    if (!res.complete) res.destroy();
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
  let answer: WireCompletion;
  try {
    answer = JSON.parse(text);
  } catch {
    throw new MalformedChunk('The answer is not JSON');
  }
  if (typeof answer !== 'object' || answer === null) throw new MalformedChunk('The answer is not an object');
  if (answer.error) throw new Error(`The provider reported an error: ${String(answer.error.message ?? 'unknown').slice(0, 300)}`);
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
  if (!escaped) return raw;
  try {
    return JSON.parse(`"${raw}"`) as string;
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
