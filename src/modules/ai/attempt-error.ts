import type { APICallError } from 'ai';

/**
 * Why one attempt failed, classified for the fallback engine: whether the
 * same link may be retried, how long the upstream asked us to wait, and
 * whether output had already reached the caller.
 */
export class AttemptError extends Error {
  readonly code: string;
  readonly status?: number;
  /** Worth retrying on the same link (429, 5xx, timeouts, network). */
  readonly retryable: boolean;
  /** From Retry-After / retry-after-ms, uncapped. */
  readonly retryAfterMs?: number;
  /** Output was already yielded: nothing may be retried. */
  readonly started: boolean;

  constructor(code: string, message: string, opts: { status?: number; retryable: boolean; retryAfterMs?: number; started: boolean }) {
    // Often the upstream's own words, cut at a length that may split a surrogate pair; it is
    // stored in jsonb (a message's error and attempts, usage events), which refuses a lone one.
    super(message.toWellFormed());
    this.code = code;
    this.status = opts.status;
    this.retryable = opts.retryable;
    this.retryAfterMs = opts.retryAfterMs;
    this.started = opts.started;
  }
}

/** The upstream answered with an error status (the lean Chat Completions driver's APICallError). */
export class UpstreamStatusError extends Error {
  readonly status: number;
  readonly headers: Record<string, string>;
  constructor(status: number, headers: Record<string, string>, message: string) {
    super(message);
    this.status = status;
    this.headers = headers;
  }
}

/** No response at all: the connection could not be made (`code` as Node reports it, ECONNREFUSED…). */
export class UpstreamUnreachable extends Error {
  readonly code: string;
  constructor(code: string) {
    super(`Cannot reach the provider: ${code}`);
    this.code = code;
  }
}

/** The response started and then broke (socket reset, body cut short). */
export class UpstreamConnectionLost extends Error {}

/** A chunk that is not the JSON the protocol promises. */
export class MalformedChunk extends Error {}

/** The AI SDK's error for an HTTP call that failed, known by its name as the SDK's other errors are (the SDK loads only where a provider uses it). */
const isApiCallError = (err: unknown): err is APICallError => err instanceof Error && err.name === 'AI_APICallError';

const MALFORMED = new Set(['AI_JSONParseError', 'AI_TypeValidationError', 'AI_InvalidResponseDataError', 'AI_EmptyResponseBodyError']);

/**
 * The AI SDK refusing the request before sending it (a tool call without its result, content its
 * provider cannot take): the caller's input, which no retry or provider's cool-down changes.
 */
const REFUSED_REQUEST = new Set([
  'AI_InvalidPromptError',
  'AI_MissingToolResultsError',
  'AI_InvalidDataContentError',
  'AI_InvalidMessageRoleError',
  'AI_MessageConversionError',
  'AI_InvalidArgumentError',
  'AI_UnsupportedFunctionalityError',
]);

/** The request cannot be sent as it is: tried on the next link (which may take it), never retried, never the provider's fault. */
export const invalidRequest = (message: string) => new AttemptError('invalid_request', message, { retryable: false, started: false });

/** Maps whatever the AI SDK, fetch or the lean driver threw to an AttemptError. */
export function classifyError(err: unknown, started: boolean): AttemptError {
  if (err instanceof AttemptError) return err;
  if (err instanceof UpstreamStatusError) return statusError(err.status, err.message, err.headers, started);
  if (err instanceof UpstreamUnreachable) return new AttemptError('connection_failed', err.message, { retryable: true, started });
  if (err instanceof UpstreamConnectionLost) return new AttemptError('connection_lost', `The connection to the provider broke: ${err.message}`, { retryable: true, started });
  if (err instanceof MalformedChunk) return malformed(started);
  if (isApiCallError(err)) {
    const status = err.statusCode;
    if (status === undefined) {
      return new AttemptError('connection_failed', `Cannot reach the provider: ${causeMessage(err)}`, { retryable: true, started });
    }
    // A 2xx whose body could not be read to the end: the connection broke mid-response.
    if (status < 300) return lost(err, started);
    return statusError(status, upstreamMessage(err), err.responseHeaders, started);
  }
  const name = (err as { name?: string } | undefined)?.name ?? '';
  if (MALFORMED.has(name)) return malformed(started);
  if (REFUSED_REQUEST.has(name) && !started) return invalidRequest(`The request cannot be sent to this provider: ${(err as Error).message}`);
  // A body cut mid-stream surfaces as a TypeError ("terminated") or a socket error from fetch.
  if (err instanceof TypeError || (err as { code?: string })?.code?.startsWith?.('ECONN')) return lost(err, started);
  return new AttemptError('upstream_failed', err instanceof Error ? err.message : String(err), { retryable: false, started });
}

/**
 * What of the upstream's words a caller may read: nothing when it refused the deployment's credentials (its
 * message names the key, in part: "Incorrect API key provided: sk-proj-****abcd"), and never a key-like token.
 */
function callerSafe(status: number, message: string): string {
  if (status === 401 || status === 403) return "the provider refused this deployment's credentials for it";
  return message.replace(KEY_LIKE, '[redacted]');
}

/** A secret key as providers print them, whole or masked (`sk-…`, `sk-proj-****abcd`, `sk-ant-api03-…`, `AIza…`). */
const KEY_LIKE = /\b(?:sk|rk|pk)-[\w*.-]{4,}|\bAIza[\w-]{10,}|\b(?:key|token)[=:]\s*[\w*.-]{8,}/gi;

function statusError(status: number, message: string, headers: Record<string, string> | undefined, started: boolean): AttemptError {
  return new AttemptError(codeForStatus(status), `Provider answered ${status}: ${callerSafe(status, message)}`, {
    status,
    retryable: status === 408 || status === 409 || status === 429 || status >= 500,
    retryAfterMs: retryAfterMs(headers),
    started,
  });
}

const malformed = (started: boolean) => new AttemptError('malformed_response', 'The provider sent a response Parley could not parse', { retryable: true, started });

function lost(err: unknown, started: boolean): AttemptError {
  const cause = (err as { cause?: { message?: string; code?: string } }).cause;
  const detail = cause?.code ?? cause?.message ?? (err as Error).message;
  return new AttemptError('connection_lost', `The connection to the provider broke: ${detail}`, { retryable: true, started });
}

function codeForStatus(status: number): string {
  if (status === 429) return 'rate_limited';
  if (status === 401 || status === 403) return 'provider_auth_failed';
  if (status === 404) return 'model_not_found';
  if (status === 408) return 'timeout';
  if (status >= 500) return 'provider_error';
  return 'provider_rejected';
}

/** Retry-After in seconds or as an HTTP date; OpenAI also sends retry-after-ms. */
export function retryAfterMs(headers: Record<string, string> | undefined): number | undefined {
  if (!headers) return undefined;
  const ms = Number(headers['retry-after-ms']);
  if (headers['retry-after-ms'] && Number.isFinite(ms) && ms >= 0) return ms;
  const value = headers['retry-after'];
  if (!value) return undefined;
  const seconds = Number(value);
  if (Number.isFinite(seconds) && seconds >= 0) return seconds * 1000;
  const date = Date.parse(value);
  return Number.isNaN(date) ? undefined : Math.max(0, date - Date.now());
}

function upstreamMessage(err: APICallError): string {
  // Both OpenAI and Anthropic put a human message at error.message; never echo a whole body.
  const data = err.data as { error?: { message?: string } } | undefined;
  return (data?.error?.message ?? err.message).slice(0, 300);
}

function causeMessage(err: APICallError): string {
  const cause = err.cause as { code?: string; message?: string; cause?: { code?: string } } | undefined;
  return cause?.cause?.code ?? cause?.code ?? cause?.message ?? err.message;
}
