import { jsonSchema, streamText, tool, type LanguageModel, type ModelMessage, type ToolSet } from 'ai';
import { classifyError, AttemptError } from './attempt-error.ts';
import type { ChatEvent, ChatMessage, ChatRequest, Usage } from './types.ts';

export interface AttemptOptions {
  model: LanguageModel;
  request: ChatRequest;
  /** Abandon the attempt when nothing has come after this long. */
  firstTokenTimeoutMs: number;
  /** Abandon a started stream that stalls this long between parts. */
  idleTimeoutMs: number;
}

export interface AttemptResult {
  finishReason: string;
  /** As the provider reported it; undefined when it did not. */
  usage: Usage | undefined;
  ttftMs: number | null;
  /** The text produced, for counting tokens when the provider reports no usage. */
  text: string;
}

/**
 * One attempt on one link, through the AI SDK's streamText with its own
 * retries off (the fallback engine retries). Yields delta and tool_call
 * events; throws AttemptError, whose `started` tells whether anything was
 * yielded (then retrying would duplicate text). A caller's abort is rethrown
 * as the signal's reason.
 */
export async function* runAttempt(opts: AttemptOptions): AsyncGenerator<ChatEvent, AttemptResult> {
  const { request } = opts;
  const started = Date.now();
  const local = new AbortController();
  const signal = request.signal ? AbortSignal.any([request.signal, local.signal]) : local.signal;
  let timedOut: 'first_token' | 'idle' | undefined;
  let timer = setTimeout(() => {
    timedOut = 'first_token';
    local.abort();
  }, opts.firstTokenTimeoutMs);

  let ttftMs: number | null = null;
  let yielded = false;
  let text = '';
  let usage: Usage | undefined;
  let finishReason = 'other';
  const toolInputs = new Map<string, string>();

  const alive = () => {
    if (ttftMs === null) {
      ttftMs = Date.now() - started;
      clearTimeout(timer);
      timer = setTimeout(() => {
        timedOut = 'idle';
        local.abort();
      }, opts.idleTimeoutMs);
    } else {
      timer.refresh();
    }
  };

  try {
    const result = streamText({
      model: opts.model,
      messages: toModelMessages(request.messages),
      allowSystemInMessages: true,
      tools: toToolSet(request),
      toolChoice: request.toolChoice && typeof request.toolChoice === 'object' ? { type: 'tool', toolName: request.toolChoice.name } : request.toolChoice,
      temperature: request.temperature,
      maxOutputTokens: request.maxTokens,
      maxRetries: 0,
      abortSignal: signal,
      // Errors arrive as 'error' parts below; the default handler would also print them to stderr.
      onError: () => {},
    });
    for await (const part of result.fullStream) {
      switch (part.type) {
        case 'text-delta':
          if (!part.text) break;
          alive();
          text += part.text;
          yielded = true;
          yield { type: 'delta', text: part.text };
          break;
        case 'reasoning-delta':
        case 'tool-input-start':
          alive();
          break;
        case 'tool-input-delta':
          alive();
          toolInputs.set(part.id, (toolInputs.get(part.id) ?? '') + part.delta);
          break;
        case 'tool-call': {
          alive();
          // The raw JSON text as streamed, when there was one; the parsed input re-serialised otherwise.
          const raw = toolInputs.get(part.toolCallId);
          yielded = true;
          yield { type: 'tool_call', call: { id: part.toolCallId, name: part.toolName, arguments: raw || JSON.stringify(part.input ?? {}) } };
          break;
        }
        case 'error':
          // Our own timeout can surface as an error part (the aborted fetch) rather than an abort part.
          throw signal.aborted ? abortOutcome() : classifyError(part.error, yielded);
        case 'abort':
          throw abortOutcome();
        case 'finish': {
          const u = part.totalUsage;
          if (u.inputTokens !== undefined || u.outputTokens !== undefined) {
            const cached = u.inputTokenDetails?.cacheReadTokens ?? u.cachedInputTokens;
            usage = { inputTokens: u.inputTokens ?? 0, outputTokens: u.outputTokens ?? 0, ...(cached ? { cachedTokens: cached } : {}) };
          }
          finishReason = part.finishReason;
          break;
        }
      }
    }
    if (signal.aborted) throw abortOutcome();
    return { finishReason, usage, ttftMs, text };
  } catch (err) {
    if (err instanceof AttemptError || isCallerAbort(err)) throw err;
    if (signal.aborted) throw abortOutcome();
    throw classifyError(err, yielded);
  } finally {
    clearTimeout(timer);
    // Stops the upstream request when the consumer leaves early or we gave up on it.
    local.abort();
  }

  function abortOutcome(): unknown {
    if (request.signal?.aborted) return request.signal.reason ?? new DOMException('The operation was aborted', 'AbortError');
    if (timedOut === 'first_token') return new AttemptError('timeout', `No output within ${opts.firstTokenTimeoutMs} ms`, { retryable: true, started: yielded });
    if (timedOut === 'idle') return new AttemptError('stream_interrupted', `The stream stalled for ${opts.idleTimeoutMs} ms`, { retryable: false, started: yielded });
    return new AttemptError('upstream_failed', 'The request was aborted', { retryable: true, started: yielded });
  }

  function isCallerAbort(err: unknown): boolean {
    return request.signal?.aborted === true && err === request.signal.reason;
  }
}

/** Parley's messages in the AI SDK's shape; a tool result needs the name of the call it answers. */
export function toModelMessages(messages: ChatMessage[]): ModelMessage[] {
  const toolNames = new Map<string, string>();
  return messages.map((m): ModelMessage => {
    switch (m.role) {
      case 'system':
        return { role: 'system', content: m.content };
      case 'user':
        return { role: 'user', content: m.content };
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
  const set: ToolSet = {};
  for (const t of request.tools) set[t.name] = tool({ description: t.description, inputSchema: jsonSchema(t.parameters as never) });
  return set;
}
