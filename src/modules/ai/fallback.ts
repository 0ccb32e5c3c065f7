import { UpstreamFailed, ValidationError } from '../../errors.ts';
import type { FailedAttempt } from './types.ts';
import { AttemptError } from './attempt-error.ts';
import { runAttempt, type AttemptResult } from './attempt.ts';
import type { ChatModel } from './chat-model.ts';
import type { CircuitBreakers } from './circuit-breaker.ts';
import { formatParam, type ChatEvent, type ChatRequest } from './types.ts';

export interface Link {
  provider: string;
  model: string;
  chatModel: ChatModel;
  /** The most output tokens the model takes (the catalog's), when known. */
  maxOutputTokens: number | null;
}

export interface FallbackPolicy {
  /** Retries of one link after its first failed attempt. */
  retries: number;
  retryBaseMs: number;
  /** Longest single wait; a Retry-After beyond it sends us to the next link instead. */
  retryMaxMs: number;
  firstTokenTimeoutMs: number;
  streamIdleTimeoutMs: number;
  /** A whole answer's limit (ChatRequest.whole), in place of the two above. */
  answerTimeoutMs: number;
}

export interface FallbackDeps {
  policy: FallbackPolicy;
  breakers: CircuitBreakers;
  /** Injected so tests can make jitter deterministic. */
  random?: () => number;
  /** Sees every event before it is yielded. */
  observe?: (event: ChatEvent) => void;
}

/** Failures that say something about this request, not about the provider's health. */
const REQUEST_SPECIFIC = new Set(['provider_rejected', 'model_not_found', 'invalid_request', 'unsupported_parameter']);

/**
 * Failures that refuse this request as it is, wherever it goes: the caller's to change. `unsupported_parameter`:
 * a provider that cannot honour the response format (chat-model.ts), which the next link may.
 */
const REFUSED = new Set(['provider_rejected', 'invalid_request', 'unsupported_parameter']);

/**
 * Runs the chain: each link is tried, and retried on retryable failures with
 * exponential backoff and jitter (at least the upstream's Retry-After), until
 * one produces output; a non-retryable failure moves straight to the next
 * link; an open circuit skips its link. Once output has reached the caller,
 * a failure ends the stream (`stream_interrupted`): another attempt would
 * repeat text the caller already has.
 */
export async function* streamWithFallback(
  deps: FallbackDeps,
  request: ChatRequest,
  links: Link[],
): AsyncGenerator<ChatEvent, { link: Link; result: AttemptResult; attempts: FailedAttempt[] }> {
  const { policy, breakers, observe } = deps;
  const attempts: FailedAttempt[] = [];
  const emit = (event: ChatEvent): ChatEvent => {
    observe?.(event);
    return event;
  };
  const failed = (link: Link, code: string, error: string, status?: number): ChatEvent => {
    const attempt: FailedAttempt = { provider: link.provider, model: link.model, error, code, ...(status ? { status } : {}), at: new Date().toISOString() };
    attempts.push(attempt);
    return { type: 'attempt_failed', attempt };
  };

  for (const link of links) {
    for (let retry = 0; ; retry++) {
      if (!breakers.allow(link.provider)) {
        yield emit(failed(link, 'circuit_open', `Skipped: ${link.provider} failed repeatedly and is cooling down`));
        break;
      }
      yield emit({ type: 'attempt', provider: link.provider, model: link.model });
      let error: AttemptError;
      try {
        const result = yield* runAttempt({
          model: link.chatModel,
          request: fitted(request, link),
          firstTokenTimeoutMs: policy.firstTokenTimeoutMs,
          idleTimeoutMs: policy.streamIdleTimeoutMs,
          answerTimeoutMs: policy.answerTimeoutMs,
          observe,
        });
        breakers.success(link.provider);
        return { link, result, attempts };
      } catch (err) {
        if (!(err instanceof AttemptError)) {
          // The caller aborted (or a bug): nothing learnt about the provider.
          breakers.release(link.provider);
          throw err;
        }
        error = err;
      }
      if (REQUEST_SPECIFIC.has(error.code)) breakers.release(link.provider);
      else breakers.failure(link.provider);
      if (error.started) {
        // Recorded in the error's attempts but not yielded: attempt_failed promises a retry or the next link follows.
        failed(link, 'stream_interrupted', error.message, error.status);
        throw UpstreamFailed(`The ${link.provider} stream broke after output had started: ${error.message}`, 'stream_interrupted', {
          attempts,
          provider: link.provider,
          model: link.model,
        });
      }
      yield emit(failed(link, error.code, error.message, error.status));
      if (!error.retryable || retry >= policy.retries) break;
      const wait = backoffMs(policy, retry, error.retryAfterMs, deps.random ?? Math.random);
      if (wait === undefined) break; // the upstream wants a longer pause than we are willing to hold the caller for
      await sleep(wait, request.signal);
    }
  }
  // Refused by every link, before sending or by the provider's 400/422 (a context too long, a bad tool schema): the
  // caller's request, not the providers, is at fault, and a 5xx would have the caller's SDK send it again.
  if (attempts.length && attempts.every((a) => REFUSED.has(a.code))) {
    const code = attempts.every((a) => a.code === attempts[0]!.code) ? attempts[0]!.code : 'provider_rejected';
    // The one parameter a link refuses by name is the response format, named as the caller's API names it.
    throw ValidationError(attempts[0]!.error, code, { attempts, ...(code === 'unsupported_parameter' && request.responseFormat ? { param: formatParam(request.responseFormat) } : {}) });
  }
  const tried = attempts.map((a) => `${a.provider}:${a.model} ${a.code}`).join(', ');
  throw UpstreamFailed(`Every provider in the chain failed (${tried})`, 'all_providers_failed', { attempts });
}

/**
 * Exponential backoff with "equal jitter" (half fixed, half random), never
 * shorter than Retry-After; undefined when Retry-After exceeds the cap.
 */
export function backoffMs(policy: Pick<FallbackPolicy, 'retryBaseMs' | 'retryMaxMs'>, retry: number, retryAfterMs: number | undefined, random: () => number): number | undefined {
  if (retryAfterMs !== undefined && retryAfterMs > policy.retryMaxMs) return undefined;
  const exp = Math.min(policy.retryMaxMs, policy.retryBaseMs * 2 ** retry);
  const jittered = exp / 2 + (random() * exp) / 2;
  return Math.min(policy.retryMaxMs, Math.max(retryAfterMs ?? 0, jittered));
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal!.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** The request as this link can take it: an output bound above its model's most is lowered to that (a chain's links differ). */
function fitted(request: ChatRequest, link: Link): ChatRequest {
  const most = link.maxOutputTokens;
  return most !== null && request.maxTokens !== undefined && request.maxTokens > most ? { ...request, maxTokens: most } : request;
}
