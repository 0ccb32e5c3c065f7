import { storableText } from '../../platform/text.ts';
import { classifyError, AttemptError } from './attempt-error.ts';
import type { ChatModel } from './chat-model.ts';
import type { ChatEvent, ChatRequest, Usage } from './types.ts';
import { tokenCount } from './tokens.ts';
import { wellFormedText } from './well-formed-text.ts';

export interface AttemptOptions {
  model: ChatModel;
  request: ChatRequest;
  /** Abandon the attempt when nothing has come after this long. */
  firstTokenTimeoutMs: number;
  /** Abandon a started stream that stalls this long between parts. */
  idleTimeoutMs: number;
  /** Abandon a whole answer (see ChatRequest.whole) that has not come after this long. */
  answerTimeoutMs: number;
  /** Sees every event before it is yielded (cheaper than another generator layer to watch them). */
  observe?: (event: ChatEvent) => void;
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
 * One attempt on one link. Yields delta and tool_call events; throws
 * AttemptError, whose `started` tells whether anything was yielded (then
 * retrying would duplicate text). A caller's abort is rethrown as the
 * signal's reason.
 */
export async function* runAttempt(opts: AttemptOptions): AsyncGenerator<ChatEvent, AttemptResult> {
  const { request, observe } = opts;
  const started = Date.now();
  const local = new AbortController();
  // The caller's abort reaches the transport through our own signal: one listener, cheaper than AbortSignal.any per attempt.
  const caller = request.signal;
  const onCallerAbort = () => local.abort(caller!.reason);
  if (caller?.aborted) onCallerAbort();
  else caller?.addEventListener('abort', onCallerAbort, { once: true });
  const signal = local.signal;
  let timedOut: 'first_token' | 'idle' | 'answer' | undefined;
  // A whole answer's parts all come at the end: one timeout for the call, none between parts.
  const whole = request.whole === true && opts.model.answersWhole === true;
  let timer = setTimeout(() => {
    timedOut = whole ? 'answer' : 'first_token';
    local.abort();
  }, whole ? opts.answerTimeoutMs : opts.firstTokenTimeoutMs);

  let ttftMs: number | null = null;
  let yielded = false;
  let text = '';
  let usage: Usage | undefined;
  let finishReason = 'other';
  let ended = false;
  const output = wellFormedText();

  const alive = () => {
    if (ttftMs === null) {
      ttftMs = Date.now() - started;
      if (whole) return;
      clearTimeout(timer);
      timer = setTimeout(() => {
        timedOut = 'idle';
        local.abort();
      }, opts.idleTimeoutMs);
    } else if (!whole) {
      timer.refresh();
    }
  };

  try {
    for await (const part of opts.model.stream(request, signal, alive)) {
      switch (part.type) {
        case 'text': {
          alive();
          const piece = output.next(part.text);
          if (!piece) break;
          text += piece;
          yielded = true;
          yield emit({ type: 'delta', text: piece });
          break;
        }
        case 'progress':
          alive();
          break;
        case 'tool_call': {
          alive();
          const rest = endText();
          if (rest) yield rest;
          yielded = true;
          // As the text is: a NUL or half a surrogate pair the model emitted in a call could not be stored (a 500, charged as ok).
          const { id, name, arguments: args } = part.call;
          yield emit({ type: 'tool_call', call: { ...part.call, id: storableText(id), name: storableText(name), arguments: storableText(args) } });
          break;
        }
        case 'abort':
          throw abortOutcome();
        case 'finish':
          usage = believable(part.usage);
          finishReason = part.finishReason;
          break;
      }
    }
    ended = true;
    if (signal.aborted) throw abortOutcome();
    const rest = endText();
    if (rest) yield rest;
    // Text relayed straight to the client (only the answering attempt relays) counts as this attempt's.
    return { finishReason, usage, ttftMs, text: request.relay ? text + request.relay.text : text };
  } catch (err) {
    if (err instanceof AttemptError || isCallerAbort(err)) throw err;
    // Our own timeout can surface as the transport's error (the aborted request) rather than an abort.
    if (signal.aborted) throw abortOutcome();
    throw classifyError(err, yielded);
  } finally {
    clearTimeout(timer);
    caller?.removeEventListener('abort', onCallerAbort);
    // Stops the upstream request when the consumer leaves early or we gave up on it. After a
    // complete stream there is nothing to stop, and an abort costs a DOMException with its stack.
    if (!ended) local.abort();
  }

  /**
   * A high surrogate held back for its other half, which never came: its delta (U+FFFD), for the
   * caller to yield; usually nothing. Not a generator: `yield*` into one costs every attempt.
   */
  function endText(): ChatEvent | undefined {
    const rest = output.end();
    if (!rest) return undefined;
    text += rest;
    yielded = true;
    return emit({ type: 'delta', text: rest });
  }

  function emit(event: ChatEvent): ChatEvent {
    observe?.(event);
    return event;
  }

  function abortOutcome(): unknown {
    if (request.signal?.aborted) return request.signal.reason ?? new DOMException('The operation was aborted', 'AbortError');
    if (timedOut === 'first_token') return new AttemptError('timeout', `No output within ${opts.firstTokenTimeoutMs} ms`, { retryable: true, started: yielded });
    if (timedOut === 'idle') return new AttemptError('stream_interrupted', `The stream stalled for ${opts.idleTimeoutMs} ms`, { retryable: false, started: yielded });
    if (timedOut === 'answer') return new AttemptError('timeout', `No answer within ${opts.answerTimeoutMs} ms`, { retryable: true, started: yielded });
    return new AttemptError('upstream_failed', 'The request was aborted', { retryable: true, started: yielded });
  }

  function isCallerAbort(err: unknown): boolean {
    return request.signal?.aborted === true && err === request.signal.reason;
  }
}

/**
 * The usage a provider reported, unless a count in it is no count (negative, fractional, not a number): it would
 * be billed, and settled against budgets, as it is (a negative one credits them), so the tokens are counted here
 * instead, as when none came. Cached tokens are at most the input's.
 */
function believable(usage: Usage | undefined): Usage | undefined {
  if (!usage) return undefined;
  const input = tokenCount(usage.inputTokens);
  const output = tokenCount(usage.outputTokens);
  if (input === undefined || output === undefined) return undefined;
  const cached = tokenCount(usage.cachedTokens);
  return { inputTokens: input, outputTokens: output, ...(cached ? { cachedTokens: Math.min(cached, input) } : {}) };
}
