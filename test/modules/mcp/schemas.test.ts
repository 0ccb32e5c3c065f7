import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Server } from '@modelcontextprotocol/sdk/server/index.js';
import { CallToolRequestSchema, ListToolsRequestSchema } from '@modelcontextprotocol/sdk/types.js';
import { validatorCount } from '../../../src/modules/tools/toolbox.ts';
import { backends } from '../../support/app.ts';
import { createUser } from '../../support/factories.ts';
import { serveMcp, warmUp } from '../../support/mcp-server.ts';
import { chatAs, useChat } from '../chat/generation-fixture.ts';

/** The probe's schema: a pattern that backtracks for ~30 s on 29 a's and a `!` in JavaScript's engine. */
const CATASTROPHIC = '^(a+)+$';
const SLOW_TEXT = `${'a'.repeat(29)}!`;

/** Tools whose input schemas are written as raw JSON Schema, as any MCP server may send them. */
const TOOLS = [
  { name: 'search', description: 'Searches', inputSchema: { type: 'object', properties: { q: { type: 'string', pattern: CATASTROPHIC } }, required: ['q'] } },
  { name: 'tag', description: 'Tags', inputSchema: { type: 'object', properties: { count: { type: 'integer' } }, patternProperties: { [CATASTROPHIC]: { type: 'string' } }, additionalProperties: false } },
  { name: 'lookup', description: 'Looks up', inputSchema: { $id: 'https://tools.example/lookup.json', type: 'object', properties: { id: { type: 'integer' } }, required: ['id'] } },
  // Another schema with the same $id (servers copy them): each tool is checked against its own.
  { name: 'find', description: 'Finds', inputSchema: { $id: 'https://tools.example/lookup.json', type: 'object', properties: { name: { type: 'string' } }, required: ['name'] } },
];

/**
 * A real MCP server (the SDK's low-level Server over its Streamable HTTP transport, stateless) listing
 * TOOLS; a call answers with its arguments. It checks nothing itself, so a test hangs only if Parley does.
 */
async function startSchemaServer() {
  const calls: Array<{ tool: string; args: unknown }> = [];
  const served = await serveMcp(() => {
    const server = new Server({ name: 'schemas', version: '1.0.0' }, { capabilities: { tools: {} } });
    server.setRequestHandler(ListToolsRequestSchema, async () => ({ tools: TOOLS }));
    server.setRequestHandler(CallToolRequestSchema, async (request) => {
      calls.push({ tool: request.params.name, args: request.params.arguments });
      return { content: [{ type: 'text', text: `${request.params.name} ${JSON.stringify(request.params.arguments)}` }] };
    });
    return server;
  });
  return { ...served, calls };
}

for (const backend of backends()) {
  describe(`MCP tool schemas [${backend}]`, () => {
    const f = useChat(backend, { MCP_ALLOW_PRIVATE: 'true', MCP_TIMEOUT_MS: '6000', MCP_LIST_TIMEOUT_MS: '8000' });
    let mcp: Awaited<ReturnType<typeof startSchemaServer>>;
    before(async () => {
      mcp = await startSchemaServer();
      await warmUp(mcp.url);
    });
    after(() => mcp.close());

    /** A user with the server as their own, and a conversation. */
    async function setUp() {
      const u = await createUser(f.t);
      const server = await f.t.api('POST', '/v1/mcp-servers', { token: u.accessToken, body: { name: 'schemas', url: mcp.url } });
      assert.equal(server.status, 201, server.text);
      const chat = chatAs(f.t, u);
      return { u, chat, c: await chat.conversation({ title: 'Schemas' }) };
    }

    /** One turn in which the model makes these calls: their stored results, and how long the turn took. */
    let turns = 0;
    async function turn(setup: Awaited<ReturnType<typeof setUp>>, calls: Array<{ name: string; arguments: string }>) {
      const ids = calls.map((_, i) => `turn${++turns}-${i}`);
      f.openai.script({ toolCalls: calls.map((call, i) => ({ id: ids[i], ...call })) }, { reply: 'Done.' });
      const started = Date.now();
      const res = await setup.chat.send(setup.c, { content: 'Go' });
      const ms = Date.now() - started;
      assert.equal(res.status, 201, res.text);
      const branch = (await setup.chat.branch(setup.c)).data;
      const results = ids.map((id) => branch.find((m: any) => m.role === 'tool' && m.content[0].callId === id)?.content[0]);
      return { ms, results };
    }

    test("a schema's catastrophic pattern is never run: the probe's call is checked and made at once, the server checks its own", async () => {
      const setup = await setUp();
      const { ms, results } = await turn(setup, [
        { name: 'schemas__search', arguments: JSON.stringify({ q: SLOW_TEXT }) },
        { name: 'schemas__tag', arguments: JSON.stringify({ count: 2, [SLOW_TEXT]: 'x' }) },
      ]);
      // Running the pattern takes tens of seconds on 29 a's (each one more doubles it); skipping it, well under one.
      assert.ok(ms < 5_000, `the turn took ${ms} ms`);
      assert.deepEqual(results.map((r: any) => r.status), ['ok', 'ok']);
      assert.deepEqual(mcp.calls.slice(-2).map((call) => call.args), [{ q: SLOW_TEXT }, { count: 2, [SLOW_TEXT]: 'x' }], 'the server got both calls as the model made them');

      // The rest of the schema is still checked before the call.
      const before = mcp.calls.length;
      const wrong = await turn(setup, [{ name: 'schemas__search', arguments: '{"q": 5}' }]);
      assert.equal(wrong.results[0].error.code, 'invalid_arguments');
      assert.match(wrong.results[0].error.message, /\/q must be string/);
      assert.equal(mcp.calls.length, before, 'not sent to the server');
    });

    test('a schema with an $id works on every turn, and schemas listed afresh each turn compile once', async () => {
      const setup = await setUp();
      for (const id of [1, 2, 3]) {
        const { results } = await turn(setup, [{ name: 'schemas__lookup', arguments: JSON.stringify({ id }) }]);
        assert.equal(results[0].status, 'ok', `turn ${id}: ${JSON.stringify(results[0].error)}`);
        assert.equal(results[0].result, `lookup {"id":${id}}`);
      }
      const { results } = await turn(setup, [
        { name: 'schemas__find', arguments: '{"name": "x"}' },
        { name: 'schemas__find', arguments: '{"id": 1}' },
      ]);
      assert.equal(results[0].status, 'ok', JSON.stringify(results[0].error));
      assert.equal(results[1].error.code, 'invalid_arguments', 'checked against its own schema');

      // Each turn lists the tools anew (fresh schema objects); an equal schema, keys in any order, reuses its validator.
      const scope = { userId: setup.u.id, projectId: null, conversationId: null, apiKeyId: null };
      const kept = validatorCount();
      for (let i = 0; i < 50; i++) {
        const tool = (await f.t.services.toolbox.offered(scope, [])).find((t) => t.name === 'schemas__lookup')!;
        const reordered = { ...tool, parameters: Object.fromEntries(Object.entries(tool.parameters).reverse()) };
        for (const each of [tool, reordered]) assert.deepEqual(f.t.services.toolbox.parse(each, each.name, `{"id": ${i}}`), { args: { id: i } });
      }
      assert.equal(validatorCount(), kept, 'no validator added');
    });
  });
}
