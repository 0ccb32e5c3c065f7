import type { Socket } from 'node:net';
import type { FastifyReply, FastifyRequest } from 'fastify';

const READ = Symbol('parley.bytesReadBefore');
const WRITTEN = Symbol('parley.bytesWrittenBefore');
type CountedSocket = Socket & { [READ]?: number; [WRITTEN]?: number };

/** A Content-Length header as a number, or undefined when there is none (chunked or streamed). */
function declared(header: unknown): number | undefined {
  if (header === undefined || header === null || header === '') return undefined;
  const n = Number(header);
  return Number.isFinite(n) && n >= 0 ? n : undefined;
}

/**
 * What one of the socket's byte counters moved since the previous response on
 * this connection ended. HTTP/1.1 answers one request at a time per connection,
 * so that is this request's share (head included).
 */
function sinceLast(socket: CountedSocket, mark: typeof READ | typeof WRITTEN, now: number | undefined): number {
  if (!Number.isFinite(now)) return 0;
  const before = socket[mark] ?? 0;
  socket[mark] = now;
  return Math.max(0, now! - before);
}

/**
 * The bytes one request received and sent, for the per-route counts. A body
 * with a Content-Length counts that length. One without (a chunked upload, an
 * event stream, a streamed CSV export) counts what the connection read or
 * wrote while the request was handled: the body plus the request or status
 * line, headers and chunk framing, so a few hundred bytes more than the body,
 * and only what was written before the client went away. A client that sends
 * its next request before this one's response is counted (rare) may have part
 * of it counted here.
 */
export function trafficOf(request: FastifyRequest, reply: FastifyReply): { bytesIn: number; bytesOut: number } {
  const socket = request.raw.socket as CountedSocket | null;
  // Both marks move on every response, so the next request on the connection starts from here.
  const read = socket ? sinceLast(socket, READ, socket.bytesRead) : 0;
  const written = socket ? sinceLast(socket, WRITTEN, socket.bytesWritten) : 0;
  const chunkedIn = request.headers['transfer-encoding'] !== undefined;
  return {
    bytesIn: declared(request.headers['content-length']) ?? (chunkedIn ? read : 0),
    bytesOut: declared(reply.getHeader('content-length')) ?? written,
  };
}
