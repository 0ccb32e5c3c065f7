import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Server } from '@modelcontextprotocol/sdk/server/index.js';
import { CallToolRequestSchema, ListToolsRequestSchema } from '@modelcontextprotocol/sdk/types.js';
import { MAX_DESCRIPTION_CHARS, MAX_TOOLS_PER_TURN } from '../../../src/modules/mcp/source.ts';
import { backends, startApp, type TestApp } from '../../support/app.ts';
import { createUser } from '../../support/factories.ts';
import { serveMcp, warmUp } from '../../support/mcp-server.ts';

type ListedTool = { name: string; description?: string; inputSchema: Record<string, unknown>; outputSchema?: Record<string, unknown> };

/**
 * A real MCP server (the SDK's low-level Server over its Streamable HTTP transport, stateless) listing `tools`
 * (as given, well-formed or not); a call answers with the tool's name. `listings` counts its `tools/list` answers.
 */
async function startListingServer(tools: ListedTool[] | unknown[]) {
  const state = { listings: 0 };
  const served = await serveMcp(() => {
    const server = new Server({ name: 'careless', version: '1.0.0' }, { capabilities: { tools: {} } });
    server.setRequestHandler(ListToolsRequestSchema, async () => {
      state.listings++;
      return { tools } as { tools: ListedTool[] };
    });
    server.setRequestHandler(CallToolRequestSchema, async (request) => ({ content: [{ type: 'text', text: `ran ${request.params.name}` }] }));
    return server;
  });
  return {
    ...served,
    get listings() {
      return state.listings;
    },
  };
}

/** A real MCP server listing `pages` pages of 100 tools, each page ~400 KB: every answer small, all of them together not. */
async function startPagingServer(pages: number) {
  const requests: string[] = [];
  const served = await serveMcp(() => {
    const server = new Server({ name: 'paging', version: '1.0.0' }, { capabilities: { tools: {} } });
    server.setRequestHandler(ListToolsRequestSchema, async (request) => {
      const page = Number(request.params?.cursor ?? 0);
      requests.push(`page ${page}`);
      const tools = Array.from({ length: 100 }, (_, i) => ({ name: `p${page}_t${i}`, description: 'z'.repeat(4_000), inputSchema: { type: 'object' as const } }));
      return { tools, nextCursor: page + 1 < pages ? String(page + 1) : undefined };
    });
    return server;
  });
  return { ...served, requests };
}

/** What a careless server writes: a NUL, a terminal escape, a right-to-left override, and far too many words. */
const NOISY = `Does things\u0000 \u001b[31mred\u001b[0m \u202Egnirts\n${'word '.repeat(600)}`;

for (const backend of backends()) {
  describe(`MCP servers that list carelessly [${backend}]`, () => {
    let t: TestApp;
    let many: Awaited<ReturnType<typeof startListingServer>>;
    let badOutput: Awaited<ReturnType<typeof startListingServer>>;
    let malformed: Awaited<ReturnType<typeof startListingServer>>;
    let paging: Awaited<ReturnType<typeof startPagingServer>>;
    before(async () => {
      paging = await startPagingServer(10);
      // 300 tools of 3 KB each: within MCP_MAX_RESPONSE_BYTES (2 MB here), far past what a model API takes in one request.
      many = await startListingServer(Array.from({ length: 300 }, (_, i) => ({ name: `tool${i}`, description: NOISY, inputSchema: { type: 'object' } })));
      badOutput = await startListingServer([
        { name: 'good', description: 'Works', inputSchema: { type: 'object' } },
        { name: 'odd', description: 'Its output schema points nowhere', inputSchema: { type: 'object' }, outputSchema: { type: 'object', properties: { x: { $ref: '#/definitions/missing' } } } },
      ]);
      malformed = await startListingServer([
        { name: 'good', description: 'Works', inputSchema: { type: 'object', properties: { q: { type: 'string' } } } },
        { name: 'no_schema', description: 'Has no inputSchema' },
        { name: 'text_schema', inputSchema: 'object' },
        { name: 'string_schema', inputSchema: { type: 'string' } },
        { name: 42, inputSchema: { type: 'object' } },
        { description: 'Has no name', inputSchema: { type: 'object' } },
        { name: 'odd_description', description: { text: 'not a string' }, inputSchema: { type: 'object' } },
        // Fields Parley does not read are not its concern: the SDK's strict schema refused this one, and the whole listing with it.
        { name: 'loud', title: 7, annotations: 'very', inputSchema: { type: 'object' } },
        { name: 'untyped', inputSchema: { properties: { n: { type: 'number' } } } },
      ]);
      await warmUp(many.url);
      t = await startApp({ backend, env: { MCP_ALLOW_PRIVATE: 'true', MCP_LIST_TIMEOUT_MS: '8000', MCP_TIMEOUT_MS: '8000', MCP_MAX_RESPONSE_BYTES: String(2 * 1024 * 1024) } });
    });
    after(async () => {
      await t?.close();
      await Promise.all([many?.close(), badOutput?.close(), malformed?.close(), paging?.close()]);
    });

    const scope = (userId: string) => ({ userId, projectId: null, conversationId: null, apiKeyId: null });
    const offered = (userId: string) => t.services.toolbox.offered(scope(userId), []);
    const register = async (token: string, body: Record<string, unknown>) => {
      const res = await t.api('POST', '/v1/mcp-servers', { token, body });
      assert.equal(res.status, 201, res.text);
      return res.body.id as string;
    };

    test('a tool whose output schema cannot be compiled costs the server none of its tools', async () => {
      const u = await createUser(t);
      const id = await register(u.accessToken, { name: 'careless', url: badOutput.url });
      const listing = await t.api('GET', `/v1/mcp-servers/${id}/tools`, { token: u.accessToken });
      assert.equal(listing.status, 200, listing.text);
      assert.deepEqual(listing.body.data.map((x: any) => x.toolName).sort(), ['careless__good', 'careless__odd']);
      const tools = await offered(u.id);
      assert.deepEqual(tools.map((x) => x.name).sort(), ['careless__good', 'careless__odd']);
      const odd = tools.find((x) => x.name === 'careless__odd')!;
      const ran = await t.services.toolbox.run(odd, {}, { ...scope(u.id), signal: new AbortController().signal, limits: {} });
      assert.deepEqual([ran.ok, ran.content], [true, 'ran odd']);
    });

    test('malformed tools are left out of a listing, not the server: every well-formed tool is listed and offered', async () => {
      const u = await createUser(t);
      const id = await register(u.accessToken, { name: 'sloppy', url: malformed.url });
      const listing = await t.api('GET', `/v1/mcp-servers/${id}/tools`, { token: u.accessToken });
      assert.equal(listing.status, 200, listing.text);
      const wellFormed = ['sloppy__good', 'sloppy__loud', 'sloppy__untyped'];
      assert.deepEqual(listing.body.data.map((x: any) => x.toolName).sort(), wellFormed);
      assert.deepEqual(listing.body.data.find((x: any) => x.name === 'good').inputSchema, { type: 'object', properties: { q: { type: 'string' } } });
      const tools = await offered(u.id);
      assert.deepEqual(tools.map((x) => x.name).sort(), wellFormed);
      const good = tools.find((x) => x.name === 'sloppy__good')!;
      const ran = await t.services.toolbox.run(good, { q: 'x' }, { ...scope(u.id), signal: new AbortController().signal, limits: {} });
      assert.deepEqual([ran.ok, ran.content], [true, 'ran good']);
    });

    test('a server listing hundreds of tools: a turn offers the first MAX_TOOLS_PER_TURN, their descriptions cleaned and cut', async () => {
      const u = await createUser(t);
      await register(u.accessToken, { name: 'many', url: many.url });
      const tools = await offered(u.id);
      assert.equal(tools.length, MAX_TOOLS_PER_TURN);
      assert.deepEqual(tools.map((x) => x.name), Array.from({ length: MAX_TOOLS_PER_TURN }, (_, i) => `many__tool${i}`));
      for (const tool of tools) {
        assert.ok(tool.description.length <= MAX_DESCRIPTION_CHARS, `${tool.name}: ${tool.description.length} characters`);
        assert.doesNotMatch(tool.description, /[\u0000\u001b\u202E]/);
      }
      assert.ok(tools[0]!.description.startsWith('Does things [31mred[0m gnirts\nword word'), JSON.stringify(tools[0]!.description.slice(0, 60)));

      // An allow-list picks the ones wanted, wherever the server lists them.
      const u2 = await createUser(t);
      await register(u2.accessToken, { name: 'many', url: many.url, allowedTools: ['tool299', 'tool7'] });
      assert.deepEqual((await offered(u2.id)).map((x) => x.name).sort(), ['many__tool299', 'many__tool7']);
    });

    test("MCP_MAX_RESPONSE_BYTES bounds a whole listing, its pages together: ten pages of 400 KB are not all held", async () => {
      const u = await createUser(t);
      const id = await register(u.accessToken, { name: 'paging', url: paging.url });
      const listing = await t.api('GET', `/v1/mcp-servers/${id}/tools`, { token: u.accessToken });
      assert.equal(listing.status, 502, listing.text.slice(0, 300));
      assert.equal(listing.body.code, 'mcp_server_unavailable');
      assert.match(listing.body.detail, /larger than 2097152 bytes/);
      assert.ok(paging.requests.length < 10, `${paging.requests.length} pages asked for`);
      assert.deepEqual(await offered(u.id), []);
    });
  });
}

for (const backend of backends()) {
  describe(`MCP listings cached per process, bounded by their size [${backend}]`, () => {
    let t: TestApp;
    let small: Awaited<ReturnType<typeof startListingServer>>;
    let large: Array<Awaited<ReturnType<typeof startListingServer>>>;
    /** Listings of 40 tools of ~1 KB: about 42 KB as JSON each, so one fits MCP_CACHE_MAX_BYTES (64 KiB here), two do not. */
    const largeTools = (prefix: string) => Array.from({ length: 40 }, (_, i) => ({ name: `${prefix}${i}`, description: 'y'.repeat(1_000), inputSchema: { type: 'object' } }));
    before(async () => {
      small = await startListingServer([{ name: 'ping', description: 'Answers', inputSchema: { type: 'object' } }]);
      large = [await startListingServer(largeTools('a')), await startListingServer(largeTools('b'))];
      // Listings live for ten minutes here: one asked for again was pushed out, not expired.
      t = await startApp({ backend, env: { MCP_ALLOW_PRIVATE: 'true', MCP_CACHE_MS: '600000', MCP_CACHE_MAX_BYTES: String(64 * 1024) } });
    });
    after(async () => {
      await t?.close();
      await Promise.all([small?.close(), ...(large ?? []).map((s) => s.close())]);
    });

    const offered = (userId: string) => t.services.toolbox.offered({ userId, projectId: null, conversationId: null, apiKeyId: null }, []);
    const userWith = async (name: string, url: string) => {
      const u = await createUser(t);
      const res = await t.api('POST', '/v1/mcp-servers', { token: u.accessToken, body: { name, url } });
      assert.equal(res.status, 201, res.text);
      return u;
    };

    test('large listings push the least recently used out rather than adding up without bound', async () => {
      const [a, b] = [large[0]!, large[1]!];
      const u = await userWith('small', small.url);
      const ua = await userWith('large', a.url);
      const ub = await userWith('large', b.url);

      assert.equal((await offered(u.id)).length, 1);
      assert.equal((await offered(u.id)).length, 1);
      assert.equal(small.listings, 1, 'a second turn reuses the listing');

      assert.equal((await offered(ua.id)).length, 40);
      assert.equal((await offered(ua.id)).length, 40);
      assert.equal(a.listings, 1, 'one large listing is kept');
      assert.equal(small.listings, 1, 'beside the small one');

      // The second large listing does not fit beside the first: the least recently used go (the small one, then the first large one).
      assert.equal((await offered(ub.id)).length, 40);
      assert.equal((await offered(ub.id)).length, 40);
      assert.equal(b.listings, 1, 'the newest listing is kept');
      assert.equal((await offered(ua.id)).length, 40);
      assert.equal(a.listings, 2, 'the older large listing was pushed out and is asked for again');
      assert.equal((await offered(u.id)).length, 1);
      assert.equal(small.listings, 2, 'the least recently used listing was pushed out too');
    });
  });
}
