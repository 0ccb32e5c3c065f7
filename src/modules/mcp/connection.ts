import http from 'node:http';
import https from 'node:https';
import { isIP } from 'node:net';
import { Readable } from 'node:stream';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import type { FetchLike } from '@modelcontextprotocol/sdk/shared/transport.js';
import type { jsonSchemaValidator } from '@modelcontextprotocol/sdk/validation/types.js';
import { z } from 'zod';
import { resolvePublic } from '../webhooks/index.ts';

/** What a server says a tool is (the parts Parley uses). */
export interface RemoteTool {
  name: string;
  description?: string;
  inputSchema: Record<string, unknown>;
}

/** What a tool call gave back, as the SDK parsed it. */
export interface RemoteResult {
  content?: Array<{ type: string; text?: string; mimeType?: string; uri?: string; resource?: { uri?: string; text?: string; mimeType?: string } }>;
  structuredContent?: Record<string, unknown>;
  isError?: boolean;
}

export interface Endpoint {
  url: string;
  /** Sent with every request (decrypted credentials). */
  headers: Record<string, string>;
}

export interface ConnectionLimits {
  allowPrivate: boolean;
  maxResponseBytes: number;
}

/** Pages of `tools/list` read at most: a server listing without end is cut there. */
const MAX_LIST_PAGES = 10;
const CLIENT_INFO = { name: 'parley', version: '1' };
/** Longest wait for a server to end its session before the connection is dropped anyway. */
const SESSION_END_MS = 5_000;

/**
 * Output schemas are not compiled: the SDK's client compiles every listed tool's `outputSchema` with Ajv,
 * on the event loop, and one it cannot compile (a `$ref` to nothing) fails the whole listing, every tool of
 * the server lost. Parley gives a result's `structuredContent` to the model as the server sent it, and a
 * call's session never lists, so nothing was ever checked against them.
 */
const outputSchemasUnchecked: jsonSchemaValidator = { getValidator: () => (input) => ({ valid: true, data: input as never, errorMessage: undefined }) };

/**
 * A fetch for the SDK's transport over node:http: every request connects to
 * the address just checked against the private ranges (no second lookup, so
 * a DNS answer that changed since registration, or between check and
 * connect, is never used), follows no redirect itself (the SDK follows one
 * within the origin through this same fetch, checked again), stops with
 * `signal`, and cuts what it reads once all its answers together pass
 * `maxResponseBytes`. One fetch serves one session (withSession), so that is
 * the session's budget: a listing's pages (up to MAX_LIST_PAGES) share it,
 * rather than each page holding that much in memory.
 */
export function pinnedFetch(limits: ConnectionLimits, onTooLarge?: (err: Error) => void): FetchLike {
  let read = 0;
  return async (input, init = {}) => {
    const url = new URL(String(input));
    const target = await resolvePublic(url, limits.allowPrivate);
    const signal = init.signal ?? undefined;
    signal?.throwIfAborted();
    const headers: Record<string, string> = {};
    new Headers(init.headers).forEach((value, key) => (headers[key] = value));
    const body = typeof init.body === 'string' ? init.body : init.body == null ? undefined : String(init.body);
    if (body !== undefined) headers['content-length'] = String(Buffer.byteLength(body));
    headers['user-agent'] ??= 'Parley-MCP/1';
    const secure = url.protocol === 'https:';
    return new Promise<Response>((resolve, reject) => {
      const req = (secure ? https : http).request(
        {
          method: init.method ?? 'GET',
          hostname: target.address,
          family: target.family,
          port: url.port || (secure ? 443 : 80),
          path: `${url.pathname}${url.search}`,
          // The URL's host goes in Host and in TLS's SNI and certificate check.
          servername: secure && !isIP(url.hostname) ? url.hostname : undefined,
          headers: { ...headers, host: url.host },
          agent: false,
        },
        (res) => {
          res.on('data', (chunk: Buffer) => {
            read += chunk.length;
            if (read <= limits.maxResponseBytes) return;
            const err = new Error(`The MCP server's answers are larger than ${limits.maxResponseBytes} bytes`);
            res.destroy(err);
            onTooLarge?.(err);
          });
          const out = new Headers();
          for (const [key, value] of Object.entries(res.headers)) {
            if (Array.isArray(value)) for (const v of value) out.append(key, v);
            else if (value !== undefined) out.set(key, value);
          }
          const status = res.statusCode ?? 502;
          // A Response cannot carry a body with these statuses.
          const empty = status === 204 || status === 304 || (init.method ?? 'GET') === 'HEAD';
          if (empty) res.resume();
          resolve(new Response(empty ? null : (Readable.toWeb(res) as ReadableStream<Uint8Array>), { status, statusText: res.statusMessage, headers: out }));
        },
      );
      const onAbort = () => req.destroy(signal?.reason instanceof Error ? signal.reason : new Error('aborted'));
      signal?.addEventListener('abort', onAbort, { once: true });
      req.on('close', () => signal?.removeEventListener('abort', onAbort));
      req.on('error', reject);
      req.end(body);
    });
  };
}

/**
 * One MCP session for one piece of work: connect (initialize), `work`, then
 * close and end the session on the server. A connection per listing or
 * call, not a pool: nothing to keep alive or find dead between turns, any
 * process may serve any turn, and a listing is cached anyway (service.ts).
 * Everything, the handshake included, stops when `signal` aborts (a hung
 * server, a cancelled turn), or when the server's answers pass
 * `maxResponseBytes`: the transport's requests are destroyed with it.
 */
export async function withSession<T>(endpoint: Endpoint, limits: ConnectionLimits, signal: AbortSignal, work: (client: Client, options: { signal: AbortSignal; timeout: number }) => Promise<T>): Promise<T> {
  signal.throwIfAborted();
  // The SDK (some 7 MB of heap) loads with the first session: a server whose users add no MCP server never holds it.
  const [{ Client }, { StreamableHTTPClientTransport }] = await Promise.all([import('@modelcontextprotocol/sdk/client/index.js'), import('@modelcontextprotocol/sdk/client/streamableHttp.js')]);
  // Answers past the budget end the session at once: the SDK only reports an event stream's error to `onerror`,
  // so the request waiting for its answer would wait out its time limit.
  const tooLarge = new AbortController();
  const session = AbortSignal.any([signal, tooLarge.signal]);
  const transport = new StreamableHTTPClientTransport(new URL(endpoint.url), {
    fetch: pinnedFetch(limits, (err) => tooLarge.abort(err)),
    requestInit: { headers: endpoint.headers },
    // One retry of a dropped event stream at most: a session here lasts one request.
    reconnectionOptions: { maxRetries: 0, initialReconnectionDelay: 1000, maxReconnectionDelay: 1000, reconnectionDelayGrowFactor: 1 },
  });
  const client = new Client(CLIENT_INFO, { capabilities: {}, jsonSchemaValidator: outputSchemasUnchecked });
  // Errors of the optional background event stream; the request's own error is what counts.
  client.onerror = () => {};
  const stop = () => void client.close().catch(() => {});
  session.addEventListener('abort', stop, { once: true });
  // The SDK's own timeout as a second guard: its default is 60 s.
  const options = { signal: session, timeout: 600_000 };
  try {
    await client.connect(transport, options);
    return await work(client, options);
  } catch (err) {
    // The SDK reports any abort as a timeout (-32001): say what it was.
    throw tooLarge.signal.aborted ? tooLarge.signal.reason : err;
  } finally {
    session.removeEventListener('abort', stop);
    if (session.aborted) stop();
    else {
      // Ends the server's session (a stateful server keeps one otherwise), then the transport, which also ends a
      // DELETE still unanswered after a while; neither holds the result back.
      const giveUp = setTimeout(stop, SESSION_END_MS).unref();
      void transport
        .terminateSession()
        .catch(() => {})
        .finally(() => {
          clearTimeout(giveUp);
          stop();
        });
    }
  }
}

/** A listing: the tools Parley can use, and those it left out (by name, or by place where the name is none). */
export interface Listing {
  tools: RemoteTool[];
  leftOut: string[];
}

/**
 * A page of `tools/list`, read loosely: the SDK's `ListToolsResultSchema` fails the whole listing, every tool
 * of the server lost, for one tool without an `inputSchema` or with an odd field Parley never reads. Each tool
 * is checked on its own (listedTool) instead.
 */
const listPage = z.object({ tools: z.array(z.unknown()), nextCursor: z.string().nullish() });
/** What Parley reads of a tool; the rest (title, annotations, outputSchema, icons, …) is not checked, since it is not used. */
const listedTool = z.object({
  name: z.string().min(1),
  description: z.string().nullish(),
  // An object schema (the arguments are an object); one without `type` is read as one, as the toolbox does.
  inputSchema: z.record(z.string(), z.unknown()).refine((schema) => schema.type === undefined || schema.type === 'object'),
});

/** Every tool the server lists (following its pages, up to a bound); a malformed tool is left out, not the listing. */
export function listTools(endpoint: Endpoint, limits: ConnectionLimits, signal: AbortSignal): Promise<Listing> {
  return withSession(endpoint, limits, signal, async (client, options) => {
    const listing: Listing = { tools: [], leftOut: [] };
    let cursor: string | undefined;
    for (let page = 0; page < MAX_LIST_PAGES; page++) {
      const result = await client.request({ method: 'tools/list', params: cursor ? { cursor } : {} }, listPage, options);
      for (const item of result.tools) {
        const tool = listedTool.safeParse(item);
        if (tool.success) listing.tools.push({ name: tool.data.name, description: tool.data.description ?? undefined, inputSchema: tool.data.inputSchema });
        else listing.leftOut.push(nameOf(item) ?? `#${listing.tools.length + listing.leftOut.length}`);
      }
      cursor = result.nextCursor ?? undefined;
      if (!cursor) break;
    }
    return listing;
  });
}

/** A malformed tool's name, for the log, when it has one. */
function nameOf(item: unknown): string | undefined {
  const name = typeof item === 'object' && item !== null ? (item as { name?: unknown }).name : undefined;
  return typeof name === 'string' && name ? name.slice(0, 100) : undefined;
}

export function callTool(endpoint: Endpoint, limits: ConnectionLimits, signal: AbortSignal, name: string, args: Record<string, unknown>): Promise<RemoteResult> {
  return withSession(endpoint, limits, signal, async (client, options) => (await client.callTool({ name, arguments: args }, undefined, options)) as RemoteResult);
}
