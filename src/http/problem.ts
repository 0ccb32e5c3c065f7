import { STATUS_CODES } from 'node:http';
import type { Socket } from 'node:net';
import type { ConnectionError, FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { hasZodFastifySchemaValidationErrors } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { AppError, DependencyUnavailable } from '../errors.ts';
import { isDatabaseUnreachable, isMissingReference } from '../platform/db/database.ts';

/** RFC 9457 problem details, as every error response is shaped. */
export const problemSchema = z
  .object({
    type: z.string(),
    title: z.string(),
    status: z.number().int(),
    detail: z.string().optional(),
    code: z.string(),
    instance: z.string().optional(),
    requestId: z.string().optional(),
  })
  .catchall(z.unknown())
  .meta({ id: 'Problem' });

export type Problem = z.infer<typeof problemSchema>;

const FASTIFY_CODES: Record<string, string> = {
  FST_ERR_CTP_INVALID_JSON_BODY: 'malformed_json',
  FST_ERR_CTP_EMPTY_JSON_BODY: 'malformed_json',
  FST_ERR_CTP_BODY_TOO_LARGE: 'body_too_large',
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 'unsupported_media_type',
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: 'invalid_content_length',
};

/** Parley's stable code for a 4xx Fastify raised itself (a body it could not parse or take), as every error format names it. */
export const clientErrorCode = (err: FastifyError): string => FASTIFY_CODES[err.code] ?? 'bad_request';

interface ProblemInput {
  status: number;
  title: string;
  code: string;
  detail?: string;
  [extra: string]: unknown;
}

export function sendProblem(reply: FastifyReply, request: FastifyRequest, p: ProblemInput) {
  return reply
    .status(p.status)
    .type('application/problem+json')
    .send({ type: `https://parley.dev/problems/${p.code}`, ...p, instance: request.url.split('?')[0], requestId: request.id });
}

/** Seconds a client is asked to wait when PostgreSQL cannot be reached. */
const DATABASE_RETRY_AFTER_SECONDS = 5;

/**
 * A database error that is not a bug, as what it tells the caller, for every error handler: PostgreSQL
 * down (refused, reset, timed out) is its 503 `dependency_unavailable`, not a 500 with the failed query and
 * its parameters in the log; a write whose parent another request deleted after this one checked it (a
 * foreign key violation) is the 404 the check would have given a moment later. Undefined for any other error.
 */
export function databaseFailure(err: unknown, request: FastifyRequest): AppError | undefined {
  if (err instanceof AppError) return undefined;
  if (isMissingReference(err)) return new AppError(404, 'not_found', 'Not found', 'What this request refers to no longer exists');
  if (!isDatabaseUnreachable(err)) return undefined;
  const cause = (err as { cause?: { message?: string } }).cause?.message ?? (err as Error).message;
  request.log.warn({ cause: String(cause).slice(0, 200) }, 'PostgreSQL is unreachable');
  return DependencyUnavailable('PostgreSQL', DATABASE_RETRY_AFTER_SECONDS, err);
}

export function installProblemHandlers(app: FastifyInstance) {
  app.setErrorHandler((raw: FastifyError | AppError | Error, request, reply) => {
    const err = databaseFailure(raw, request) ?? raw;
    if (err instanceof AppError) {
      reply.headers(err.headers);
      return sendProblem(reply, request, { status: err.status, title: err.title, detail: err.message, code: err.code, ...err.extra });
    }
    if (hasZodFastifySchemaValidationErrors(err)) {
      const errors = err.validation.map((v) => ({ path: v.instancePath || '/', message: v.message ?? 'invalid' }));
      const where = err.validationContext ?? 'request';
      return sendProblem(reply, request, {
        status: 400,
        title: 'Validation failed',
        detail: `Invalid ${where}: ${errors.map((e) => `${e.path} ${e.message}`).join('; ')}`,
        code: 'validation_failed',
        errors,
      });
    }
    const status = (err as FastifyError).statusCode;
    if (status && status >= 400 && status < 500) {
      const code = clientErrorCode(err as FastifyError);
      return sendProblem(reply, request, { status, title: httpTitle(status), detail: err.message, code });
    }
    request.log.error({ err }, 'unhandled error');
    return sendProblem(reply, request, {
      status: 500,
      title: 'Internal Server Error',
      detail: `Something went wrong on our side. Quote request id ${request.id} when reporting it.`,
      code: 'internal_error',
    });
  });

  app.setNotFoundHandler((request, reply) =>
    sendProblem(reply, request, { status: 404, title: 'Not found', detail: `No route ${request.method} ${request.url.split('?')[0]}`, code: 'route_not_found' }),
  );
}

/**
 * Fastify's `clientErrorHandler`: what Node's HTTP parser refuses before any
 * request exists (headers or request line too large, a malformed request line,
 * Content-Length or chunk) never reaches the error handler, so the problem is
 * written on the socket here, and the connection closed: after a parse error
 * the rest of its bytes cannot be trusted to start the next request.
 */
export function writeClientError(err: ConnectionError, socket: Socket) {
  if (err.code === 'ECONNRESET' || socket.destroyed) return;
  // As Node's own handler does: a response already under way cannot be followed by another.
  const inFlight = (socket as Socket & { _httpMessage?: { headersSent?: boolean } })._httpMessage;
  if (socket.writable && !inFlight?.headersSent) {
    const [status, code, detail] = clientErrorOf(err.code);
    socket.write(rawProblem(status, code, detail));
  }
  socket.destroy(err);
}

/**
 * A problem as a whole HTTP/1.1 response with `connection: close`, for a socket no
 * reply object owns: one Node's parser refused, or an upgrade `ws` refused.
 */
export function rawProblem(status: number, code: string, detail: string, headers: Record<string, string> = {}): string {
  const body = JSON.stringify({ type: `https://parley.dev/problems/${code}`, title: STATUS_CODES[status], status, detail, code });
  const extra = Object.entries(headers).map(([name, value]) => `${name}: ${value}\r\n`).join('');
  return (
    `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\ncontent-type: application/problem+json; charset=utf-8\r\n` +
    `content-length: ${Buffer.byteLength(body)}\r\n${extra}connection: close\r\n\r\n${body}`
  );
}

function clientErrorOf(code: string): [status: number, code: string, detail: string] {
  if (code === 'HPE_HEADER_OVERFLOW') return [431, 'headers_too_large', 'The request line and headers are larger than this server accepts'];
  if (code === 'ERR_HTTP_REQUEST_TIMEOUT') return [408, 'request_timeout', 'The request was not received in time'];
  return [400, 'bad_request', 'The request is not valid HTTP'];
}

function httpTitle(status: number): string {
  const titles: Record<number, string> = { 400: 'Bad request', 401: 'Unauthorized', 403: 'Forbidden', 404: 'Not found', 405: 'Method not allowed', 406: 'Not acceptable', 413: 'Payload too large', 415: 'Unsupported media type', 429: 'Too many requests' };
  return titles[status] ?? 'Bad request';
}
