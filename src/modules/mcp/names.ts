/** `<server>__<tool>`, made to fit the model APIs' `^[a-zA-Z0-9_-]{1,64}$`. */
export const toolNameOf = (server: string, tool: string) => `${server}__${tool}`.replace(/[^a-zA-Z0-9_-]/g, '_').slice(0, 64);

/** What went wrong with a server, in words for the model or the API (never the headers). */
export function describeFailure(err: unknown, timeoutMs?: number): string {
  const e = err as { name?: string; code?: unknown; message?: string; cause?: { code?: string } };
  if (e?.name === 'TimeoutError' || e?.name === 'AbortError' || e?.code === -32001) return timeoutMs ? `The MCP server did not answer within ${timeoutMs} ms` : 'The MCP server did not answer in time';
  if (e?.code === 'webhook_url_private') return "The MCP server's address is a private, loopback or link-local one";
  if (e?.code === 'webhook_url_unresolvable') return "The MCP server's host does not resolve";
  const code = (e as { code?: string })?.code ?? e?.cause?.code;
  if (code === 'ECONNREFUSED') return 'The MCP server refused the connection';
  if (code === 'ECONNRESET' || code === 'EPIPE') return 'The MCP server dropped the connection';
  const message = (e?.message ?? String(err)).replace(/\s+/g, ' ').slice(0, 300);
  return `The MCP server could not be used: ${message}`;
}
