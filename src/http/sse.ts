import type { OutgoingHttpHeaders, ServerResponse } from 'node:http';
import type { FastifyReply, FastifyRequest } from 'fastify';

export interface SseFrame {
  /** Sent as `id:`; what the client's EventSource echoes back in Last-Event-ID. */
  id?: number | string;
  event: string;
  data: unknown;
}

const HEARTBEAT_MS = 15_000;
const RECONNECT_MS = 1000;

/** Whether the client asked for Server-Sent Events. */
export const wantsEventStream = (request: FastifyRequest) => (request.headers.accept ?? '').includes('text/event-stream');

/**
 * The offset to resume from: `?offset=N` (the first event wanted) or the
 * `Last-Event-ID` header (the last event received, so one past it).
 */
export function resumeOffset(request: FastifyRequest, queryOffset: number | undefined): number {
  if (queryOffset !== undefined) return queryOffset;
  // Decimal digits only: Number() would read '' and ' ' as 0 (skipping event 0), and '0x1' or '1e2' as ids.
  const header = request.headers['last-event-id'];
  const last = typeof header === 'string' ? header.trim() : '';
  return /^\d{1,15}$/.test(last) ? Number(last) + 1 : 0;
}

/**
 * Takes the response over for an event stream. `signal` aborts when the client
 * goes away (or `close` is called); writes wait for the socket to drain, so a
 * slow client slows its reader instead of buffering without bound.
 */
export function openEventStream(request: FastifyRequest, reply: FastifyReply, status = 200) {
  const res = takeOverForEvents(request, reply, status);
  const gone = new AbortController();
  res.on('close', () => gone.abort());
  // Gone already (while the route was getting ready): nothing will be read.
  if (res.destroyed) gone.abort();
  // Reconnect soon after a dropped connection (EventSource's default wait is longer).
  res.write(`retry: ${RECONNECT_MS}\n\n`);
  const heartbeat = setInterval(() => {
    if (!res.destroyed) res.write(': keep-alive\n\n');
  }, HEARTBEAT_MS);
  heartbeat.unref();

  return {
    signal: gone.signal,
    async send(frame: SseFrame): Promise<void> {
      if (gone.signal.aborted) return;
      let text = frame.id !== undefined ? `id: ${frame.id}\n` : '';
      text += `event: ${frame.event}\ndata: ${JSON.stringify(frame.data)}\n\n`;
      if (!res.write(text)) await drained(res, gone.signal);
    },
    close() {
      clearInterval(heartbeat);
      if (!res.writableEnded) res.end();
      gone.abort();
    },
  };
}

/**
 * Hijacks the response and sends the head of an event stream, with the headers
 * hooks and guards have set on the reply so far (rate limits, request id).
 */
export function takeOverForEvents(request: FastifyRequest, reply: FastifyReply, status = 200): ServerResponse {
  reply.hijack();
  const res = reply.raw;
  res.writeHead(status, {
    ...(reply.getHeaders() as OutgoingHttpHeaders),
    'content-type': 'text/event-stream; charset=utf-8',
    'cache-control': 'no-cache, no-transform',
    connection: 'keep-alive',
    // nginx and similar proxies would otherwise buffer the stream.
    'x-accel-buffering': 'no',
    'x-request-id': request.id,
  });
  return res;
}

/**
 * Resolves once a response that refused a write can take more: on `drain`, or
 * when it closes or `signal` aborts (nothing more will be written then). Every
 * listener it added is removed, whichever comes first.
 */
export function drained(res: ServerResponse, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      res.off('drain', done).off('close', done);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    if (signal?.aborted || res.destroyed) return resolve();
    res.on('drain', done).on('close', done);
    signal?.addEventListener('abort', done);
  });
}

export type EventStream = ReturnType<typeof openEventStream>;
