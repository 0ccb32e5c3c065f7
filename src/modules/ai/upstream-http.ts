import { StringDecoder } from 'node:string_decoder';
import { Agent, type Dispatcher } from 'undici';
import { MalformedChunk, UpstreamConnectionLost, UpstreamStatusError, UpstreamUnreachable } from './attempt-error.ts';

/**
 * The Chat Completions driver's HTTP: one POST through undici's dispatcher,
 * its answer read whole or piece by piece as the socket delivers it. The
 * dispatcher's callbacks feed the reader directly, with no IncomingMessage,
 * Readable or async iterator between the socket and the text: in a harness
 * of whole answers that was about half node:http's CPU per call, and a
 * stream's pieces can be passed on (`tap`) without waking the reader at all.
 *
 * Errors: the signal's reason when it aborted the call, UpstreamUnreachable
 * when no answer came (the connection could not be made or was lost before
 * the status), UpstreamConnectionLost when it was lost after, MalformedChunk
 * for a whole answer past WHOLE_ANSWER_LIMIT.
 */
export function createUpstreamHttp() {
  // Idle sockets are kept for a minute, or a little less than the server's `Keep-Alive: timeout=N`
  // says; undici unrefs them, so they never hold the process open. Its own header and body timeouts
  // are off: the attempt's first-token, idle and answer timeouts bound every call.
  const dispatcher = new Agent({ keepAliveTimeout: 60_000, headersTimeout: 0, bodyTimeout: 0 });
  return {
    /** Where one model's calls go, parsed once: the URL's credentials become Basic auth unless `apiKey` is sent. */
    target(url: URL, apiKey: string | undefined): UpstreamTarget {
      const credentials = url.username ? `${decodeURIComponent(url.username)}:${decodeURIComponent(url.password)}` : undefined;
      const authorization = apiKey ? `Bearer ${apiKey}` : credentials ? `Basic ${Buffer.from(credentials).toString('base64')}` : undefined;
      return { dispatcher, origin: url.origin, path: url.pathname + url.search, authorization };
    },
  };
}

export interface UpstreamTarget {
  dispatcher: Dispatcher;
  origin: string;
  path: string;
  authorization: string | undefined;
}

type Headers = Record<string, string | string[] | undefined>;

/** Longest whole answer read: a runaway or hostile upstream cannot make the process buffer without end. */
const WHOLE_ANSWER_LIMIT = 32 * 1024 * 1024;

/** Longest error body read from a failed answer; only its message is kept. */
const ERROR_BODY_LIMIT = 64 * 1024;

/** A POST of JSON, answered whole: its text, or the UpstreamStatusError a status outside 2xx makes. */
export async function postWhole(target: UpstreamTarget, body: string, signal: AbortSignal): Promise<string> {
  const answer = await exchange(target, body, 'application/json', signal, undefined);
  if (answer.status < 200 || answer.status >= 300) throw statusError(answer.status, answer.headers, answer.text, answer.statusText);
  return answer.text;
}

/**
 * An answer read as it comes: `next()` gives its text piece by piece (undefined
 * at the end). While the reader waits with nothing queued, each piece is first
 * offered to `tap`, which may take it whole (true) so the reader is not woken.
 */
export interface UpstreamStream {
  next(): Promise<string | undefined>;
  tap: ((piece: string) => boolean) | undefined;
  /** Stops reading from the socket, for a reader whose own reader is slow; `resume` goes on. */
  pause(): void;
  resume(): void;
  /** Done reading: an answer not read to its end has its connection closed. */
  close(): void;
}

/** A POST of JSON whose answer is an event stream, open once its status is 2xx (an UpstreamStatusError otherwise). */
export async function postStream(target: UpstreamTarget, body: string, signal: AbortSignal): Promise<UpstreamStream> {
  const { reader, sink } = createPieces();
  const answer = await exchange(target, body, 'text/event-stream', signal, sink);
  if (answer.status >= 200 && answer.status < 300) return reader;
  // The error body is a courtesy: its message is kept when it comes, the status says enough when not.
  let text = '';
  try {
    for (let piece = await reader.next(); piece !== undefined && text.length <= ERROR_BODY_LIMIT; piece = await reader.next()) text += piece;
  } catch {}
  reader.close();
  throw statusError(answer.status, answer.headers, text, answer.statusText);
}

interface Answer {
  status: number;
  statusText: string | undefined;
  headers: Headers;
  text: string;
}

/**
 * One dispatch. Without a sink the promise settles with the whole answer;
 * with one, as soon as the status is known, and the body goes to the sink.
 */
function exchange(target: UpstreamTarget, body: string, accept: string, signal: AbortSignal, sink: PieceSink | undefined): Promise<Answer> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(signal.reason);
    const headers: Record<string, string> = { 'content-type': 'application/json', accept, 'content-length': String(Buffer.byteLength(body)) };
    if (target.authorization) headers.authorization = target.authorization;
    const answer: Answer = { status: 0, statusText: undefined, headers: {}, text: '' };
    const decoder = new StringDecoder('utf8');
    let settled = false;
    let controller: Dispatcher.DispatchController | undefined;
    const onAbort = () => controller?.abort(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    target.dispatcher.dispatch(
      { origin: target.origin, path: target.path, method: 'POST', headers, body },
      {
        onRequestStart(c) {
          controller = c;
          sink?.start(c);
          if (signal.aborted) c.abort(signal.reason);
        },
        onResponseStart(_c, status, responseHeaders, statusText) {
          // 1xx informational answers come first, and are not the answer.
          if (status < 200) return;
          answer.status = status;
          answer.statusText = statusText;
          answer.headers = responseHeaders;
          if (sink && !settled) {
            settled = true;
            resolve(answer);
          }
        },
        onResponseData(c, chunk) {
          const text = decoder.write(chunk);
          if (sink) return sink.push(text);
          answer.text += text;
          if (answer.text.length > WHOLE_ANSWER_LIMIT) c.abort(new MalformedChunk(`The answer is longer than ${WHOLE_ANSWER_LIMIT} characters`));
        },
        onResponseEnd() {
          signal.removeEventListener('abort', onAbort);
          const rest = decoder.end();
          if (sink) {
            sink.push(rest);
            return sink.end();
          }
          answer.text += rest;
          settled = true;
          resolve(answer);
        },
        onResponseError(_c, err) {
          signal.removeEventListener('abort', onAbort);
          const reason = signal.aborted ? signal.reason : err instanceof MalformedChunk ? err : transportError(err, answer.status !== 0);
          sink?.fail(reason);
          if (settled) return;
          settled = true;
          reject(reason);
        },
      },
    );
  });
}

const transportError = (err: unknown, answered: boolean) => {
  const code = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
  return answered ? new UpstreamConnectionLost(code) : new UpstreamUnreachable(code);
};

/** Where the dispatcher's callbacks put a body's pieces, for the reader. */
interface PieceSink {
  start(controller: Dispatcher.DispatchController): void;
  push(piece: string): void;
  end(): void;
  fail(err: unknown): void;
}

/** A reader far behind: the socket is not read until it catches up. */
const QUEUE_PAUSE = 16;
const QUEUE_RESUME = 4;

function createPieces(): { reader: UpstreamStream; sink: PieceSink } {
  const queue: string[] = [];
  let controller: Dispatcher.DispatchController | undefined;
  let ended = false;
  let failure: unknown;
  let waiting: { resolve: (piece: string | undefined) => void; reject: (err: unknown) => void } | undefined;
  const wake = () => {
    const w = waiting!;
    waiting = undefined;
    return w;
  };
  const reader: UpstreamStream = {
    tap: undefined,
    next() {
      const piece = queue.shift();
      if (piece !== undefined) {
        if (controller?.paused && queue.length < QUEUE_RESUME) controller.resume();
        return Promise.resolve(piece);
      }
      if (failure !== undefined) return Promise.reject(failure);
      if (ended) return Promise.resolve(undefined);
      return new Promise((resolve, reject) => (waiting = { resolve, reject }));
    },
    pause: () => controller?.pause(),
    resume: () => controller?.resume(),
    close() {
      reader.tap = undefined;
      if (!ended && failure === undefined) controller?.abort(new DOMException('The reader left', 'AbortError'));
    },
  };
  const sink: PieceSink = {
    start(c) {
      controller = c;
    },
    push(piece) {
      if (!piece) return;
      if (waiting) {
        if (!reader.tap?.(piece)) wake().resolve(piece);
        return;
      }
      queue.push(piece);
      if (queue.length >= QUEUE_PAUSE && !controller?.paused) controller?.pause();
    },
    end() {
      ended = true;
      if (waiting) wake().resolve(undefined);
    },
    fail(err) {
      if (ended || failure !== undefined) return;
      failure = err;
      if (waiting) wake().reject(err);
    },
  };
  return { reader, sink };
}

/** A failed answer's status, headers (Retry-After…) and the message of its OpenAI error body, if it has one. */
function statusError(status: number, raw: Headers, text: string, statusText: string | undefined): UpstreamStatusError {
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(raw)) if (value !== undefined) headers[name] = Array.isArray(value) ? value.join(', ') : value;
  let message: string | undefined;
  try {
    message = (JSON.parse(text.slice(0, ERROR_BODY_LIMIT)) as { error?: { message?: unknown } }).error?.message as string | undefined;
  } catch {}
  return new UpstreamStatusError(status, headers, String(message ?? statusText ?? `HTTP ${status}`).slice(0, 300));
}
