/** Node's codes for a connection that could not be made or broke: the other side's failure, not the request's. */
const CONNECTION_ERROR_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN']);

/** Whether an error's `code` is one of Node's for a connection that could not be made or broke. */
export function isConnectionError(err: unknown): boolean {
  const code = (err as { code?: unknown } | null | undefined)?.code;
  return typeof code === 'string' && CONNECTION_ERROR_CODES.has(code);
}
