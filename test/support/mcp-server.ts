import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { z } from 'zod';

export interface TestMcpServer {
  url: string;
  /** Every request's method and headers, in order. */
  requests: Array<{ method: string; headers: http.IncomingHttpHeaders }>;
  /** Calls of each tool, with their arguments. */
  calls: Array<{ tool: string; args: unknown }>;
  close(): Promise<void>;
}

/**
 * A real MCP server (the SDK's McpServer over its Streamable HTTP transport,
 * stateless: a server and transport per request, as the SDK's example) with
 * `add`, `echo`, `stats` (structured content), `fails` (an isError result)
 * and `hang` (never answers). With `token`, a request without
 * `Authorization: Bearer <token>` gets a 401.
 */
export async function startMcpServer(opts: { token?: string } = {}): Promise<TestMcpServer> {
  const requests: TestMcpServer['requests'] = [];
  const calls: TestMcpServer['calls'] = [];
  const hanging = new Set<() => void>();

  const build = () => {
    const server = new McpServer({ name: 'parley-test', version: '1.0.0' });
    server.registerTool('add', { description: 'Adds two numbers', inputSchema: { a: z.number(), b: z.number() } }, async ({ a, b }) => {
      calls.push({ tool: 'add', args: { a, b } });
      return { content: [{ type: 'text', text: String(a + b) }] };
    });
    server.registerTool('echo', { description: 'Says the text back', inputSchema: { text: z.string() } }, async ({ text }) => {
      calls.push({ tool: 'echo', args: { text } });
      return { content: [{ type: 'text', text }, { type: 'text', text: `(${text.length} characters)` }] };
    });
    server.registerTool('stats', { description: 'Counts the words', inputSchema: { text: z.string() }, outputSchema: { words: z.number() } }, async ({ text }) => {
      calls.push({ tool: 'stats', args: { text } });
      const words = text.split(/\s+/).filter(Boolean).length;
      return { content: [{ type: 'text', text: JSON.stringify({ words }) }], structuredContent: { words } };
    });
    server.registerTool('fails', { description: 'Always fails', inputSchema: {} }, async () => {
      calls.push({ tool: 'fails', args: {} });
      return { isError: true, content: [{ type: 'text', text: 'The widget is out of stock' }] };
    });
    server.registerTool('hang', { description: 'Never answers', inputSchema: {} }, async () => {
      calls.push({ tool: 'hang', args: {} });
      await new Promise<void>((resolve) => hanging.add(resolve));
      return { content: [{ type: 'text', text: 'too late' }] };
    });
    return server;
  };

  const served = await serveMcp(build, (req, res) => {
    requests.push({ method: req.method ?? '', headers: req.headers });
    if (opts.token && req.headers.authorization !== `Bearer ${opts.token}`) {
      res.writeHead(401, { 'content-type': 'application/json' }).end(JSON.stringify({ error: 'unauthorized' }));
      return false;
    }
    return true;
  });
  return {
    url: served.url,
    requests,
    calls,
    async close() {
      for (const release of hanging) release();
      await served.close();
    },
  };
}

/** What an MCP SDK server (McpServer or the low-level Server) offers a transport. */
interface Connectable {
  connect(transport: StreamableHTTPServerTransport): Promise<void>;
  close(): Promise<void>;
}

/**
 * A server from `build` over the SDK's Streamable HTTP transport, stateless (a server and transport
 * per request, as the SDK's example), at `/mcp` on loopback. `admit` may answer a request itself
 * (false) before MCP sees it; a method other than POST gets a 405.
 */
export async function serveMcp(build: () => Connectable, admit?: (req: http.IncomingMessage, res: http.ServerResponse) => boolean): Promise<{ url: string; close(): Promise<void> }> {
  const httpServer = http.createServer(async (req, res) => {
    if (admit && !admit(req, res)) return;
    if (req.method !== 'POST') {
      res.writeHead(405, { allow: 'POST' }).end();
      return;
    }
    const server = build();
    const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined });
    res.on('close', () => {
      void transport.close();
      void server.close();
    });
    await server.connect(transport);
    await transport.handleRequest(req, res);
  });
  await new Promise<void>((resolve) => httpServer.listen(0, '127.0.0.1', resolve));
  const { port } = httpServer.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/mcp`,
    async close() {
      httpServer.closeAllConnections();
      await new Promise<void>((resolve) => httpServer.close(() => resolve()));
    },
  };
}

/** Not MCP: a web server answering every request with `status` and an HTML page (or never, with `hang`). */
export async function startOtherServer(mode: { status: number; body: string; contentType: string } | 'hang'): Promise<{ url: string; hits: number; close(): Promise<void> }> {
  const state = { hits: 0 };
  const server = http.createServer((req, res) => {
    state.hits++;
    req.resume();
    if (mode === 'hang') return;
    res.writeHead(mode.status, { 'content-type': mode.contentType }).end(mode.body);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/mcp`,
    get hits() {
      return state.hits;
    },
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** One session with a plain SDK client: lists the tools once. */
export async function warmUp(url: string): Promise<void> {
  const client = new Client({ name: 'warm-up', version: '1' });
  await client.connect(new StreamableHTTPClientTransport(new URL(url)));
  await client.listTools();
  await client.close();
}
