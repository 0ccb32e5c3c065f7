/**
 * The typed errors services throw. Each carries an HTTP status and a stable
 * machine `code`; the HTTP layer turns them into RFC 9457 problem+json.
 */
export class AppError extends Error {
  readonly status: number;
  readonly code: string;
  readonly title: string;
  readonly headers: Record<string, string>;
  readonly extra: Record<string, unknown>;

  constructor(
    status: number,
    code: string,
    title: string,
    detail?: string,
    opts: { headers?: Record<string, string>; extra?: Record<string, unknown>; cause?: unknown } = {},
  ) {
    super(detail ?? title, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.status = status;
    this.code = code;
    this.title = title;
    this.headers = opts.headers ?? {};
    this.extra = opts.extra ?? {};
  }
}

export const ValidationError = (detail: string, code = 'validation_failed', extra?: Record<string, unknown>) =>
  new AppError(400, code, 'Validation failed', detail, { extra });

/**
 * A `?cursor=` the list never made, found out past the query's schema (a job list's, a message branch's): the same
 * 400 as every other list's (starting over would page a client round for ever).
 */
export const InvalidCursor = () => ValidationError('Invalid querystring: cursor: invalid cursor', 'validation_failed', { errors: [{ path: 'cursor', message: 'invalid cursor' }] });

export const Unauthorized = (detail = 'Authentication is required', code = 'unauthorized') =>
  new AppError(401, code, 'Unauthorized', detail, { headers: { 'www-authenticate': 'Bearer' } });

export const Forbidden = (detail = 'You may not do this', code = 'forbidden') =>
  new AppError(403, code, 'Forbidden', detail);

export const NotFound = (what = 'Resource', code = 'not_found') =>
  new AppError(404, code, 'Not found', `${what} not found`);

export const Conflict = (detail: string, code = 'conflict') => new AppError(409, code, 'Conflict', detail);

export const Gone = (detail: string, code = 'gone') => new AppError(410, code, 'Gone', detail);

export const RateLimited = (retryAfterSeconds: number, detail = 'Too many requests, slow down', code = 'rate_limited') =>
  new AppError(429, code, 'Too many requests', detail, {
    headers: { 'retry-after': String(Math.max(1, Math.ceil(retryAfterSeconds))) },
    extra: { retryAfter: Math.max(1, Math.ceil(retryAfterSeconds)) },
  });

export const QuotaExceeded = (detail: string, code = 'quota_exceeded', extra?: Record<string, unknown>) =>
  new AppError(402, code, 'Quota exceeded', detail, { extra });

export const UpstreamFailed = (detail: string, code = 'upstream_failed', extra?: Record<string, unknown>) =>
  new AppError(502, code, 'Upstream failed', detail, { extra });

/**
 * 503: a service Parley needs for this request (e.g. `Redis`) cannot be reached
 * now. Retry-After says when trying again is worthwhile; `cause` is the error
 * that told, for the logs.
 */
export const DependencyUnavailable = (dependency: string, retryAfterSeconds: number, cause?: unknown) =>
  new AppError(503, 'dependency_unavailable', 'Service unavailable', `${dependency} is unavailable`, {
    headers: { 'retry-after': String(Math.max(1, Math.ceil(retryAfterSeconds))) },
    extra: { dependency: dependency.toLowerCase(), retryAfter: Math.max(1, Math.ceil(retryAfterSeconds)) },
    cause,
  });

/** A bad environment at start: the message names every bad variable. */
export class ConfigError extends Error {}

/** Something the operator must put right that is not the environment (a data directory another process holds): told in its own words. */
export class OperatorError extends Error {}
