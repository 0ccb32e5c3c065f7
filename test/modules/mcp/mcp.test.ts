import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { sql } from 'drizzle-orm';
import { backends, startApp, type TestApp } from '../../support/app.ts';
import { createUser, type TestUser } from '../../support/factories.ts';
import { startMcpServer, startOtherServer, warmUp, type TestMcpServer } from '../../support/mcp-server.ts';

const TOKEN = 'mcp-secret-token-4f1c9a';
const rows = async (t: TestApp, query: ReturnType<typeof sql>) => ((await t.deps.db.execute(query)) as unknown as { rows: Record<string, unknown>[] }).rows;

for (const backend of backends()) {
  describe(`MCP servers as tool sources [${backend}]`, () => {
    let t: TestApp;
    let mcp: TestMcpServer;
    let open: TestMcpServer;

    before(async () => {
      [mcp, open] = await Promise.all([startMcpServer({ token: TOKEN }), startMcpServer()]);
      // The first session loads the SDK's client and server code: slow on a busy machine, and not what the time limits are about.
      await warmUp(open.url);
      t = await startApp({ backend, env: { MCP_ALLOW_PRIVATE: 'true', MCP_LIST_TIMEOUT_MS: '6000', MCP_TIMEOUT_MS: '6000' } });
    });
    after(async () => {
      await t?.close();
      await Promise.all([mcp?.close(), open?.close()]);
    });

    const scope = (u: TestUser, projectId: string | null = null) => ({ userId: u.id, projectId, conversationId: null, apiKeyId: null });
    const offered = async (u: TestUser, projectId: string | null = null) => t.services.toolbox.offered(scope(u, projectId), []);
    const names = async (u: TestUser, projectId: string | null = null) => (await offered(u, projectId)).map((tool) => tool.name).sort();
    const run = async (u: TestUser, name: string, args: Record<string, unknown>, projectId: string | null = null) => {
      const tool = (await offered(u, projectId)).find((x) => x.name === name);
      assert.ok(tool, `${name} is offered`);
      return t.services.toolbox.run(tool, args, { ...scope(u, projectId), signal: new AbortController().signal, limits: {} });
    };
    const register = (u: TestUser, body: Record<string, unknown>, projectId?: string) =>
      t.api('POST', projectId ? `/v1/projects/${projectId}/mcp-servers` : '/v1/mcp-servers', { token: u.accessToken, body });
    const project = async (u: TestUser, name = 'Agent') => {
      const res = await t.api('POST', '/v1/projects', { token: u.accessToken, body: { name } });
      assert.equal(res.status, 201, res.text);
      return res.body.id as string;
    };

    test('a server registered with a bearer token: its tools listed and run over MCP, the token encrypted at rest and never shown', async () => {
      const u = await createUser(t);
      const res = await register(u, { name: 'calc', url: mcp.url, credentials: { Authorization: `Bearer ${TOKEN}` } });
      assert.equal(res.status, 201, res.text);
      assert.equal(res.body.hasCredentials, true);
      assert.equal(res.body.projectId, null);
      assert.ok(!res.text.includes(TOKEN), 'never returned');
      const [row] = await rows(t, sql`select * from mcp_servers where id = ${res.body.id}`);
      assert.ok(typeof row!.credentials_enc === 'string' && !JSON.stringify(row).includes(TOKEN) && !JSON.stringify(row).includes('Bearer'), 'not stored in the clear');
      const got = await t.api('GET', `/v1/mcp-servers/${res.body.id}`, { token: u.accessToken });
      assert.equal(got.status, 200);
      assert.ok(!got.text.includes(TOKEN));

      const tools = await t.api('GET', `/v1/mcp-servers/${res.body.id}/tools`, { token: u.accessToken });
      assert.equal(tools.status, 200, tools.text);
      assert.deepEqual(tools.body.data.map((x: any) => x.toolName).sort(), ['calc__add', 'calc__echo', 'calc__fails', 'calc__hang', 'calc__stats']);
      const add = tools.body.data.find((x: any) => x.name === 'add');
      assert.equal(add.description, 'Adds two numbers');
      assert.deepEqual(Object.keys(add.inputSchema.properties).sort(), ['a', 'b']);
      assert.ok(tools.body.data.every((x: any) => x.allowed && !x.disabled));
      assert.ok(mcp.requests.some((r) => r.headers.authorization === `Bearer ${TOKEN}`), 'the credentials were sent');

      assert.deepEqual(await names(u), ['calc__add', 'calc__echo', 'calc__fails', 'calc__hang', 'calc__stats']);
      const tool = (await offered(u)).find((x) => x.name === 'calc__add')!;
      assert.equal(tool.needsApproval, false);
      // The model's arguments are checked against the server's schema before the call.
      assert.ok('outcome' in t.services.toolbox.parse(tool, tool.name, '{"a": "two", "b": 3}'));
      assert.deepEqual(t.services.toolbox.parse(tool, tool.name, '{"a": 2, "b": 3}'), { args: { a: 2, b: 3 } });

      const add5 = await run(u, 'calc__add', { a: 2, b: 3 });
      assert.equal(add5.ok, true);
      assert.equal(add5.content, '5');
      const echo = await run(u, 'calc__echo', { text: 'hi' });
      assert.equal(echo.content, 'hi\n(2 characters)');
      const stats = await run(u, 'calc__stats', { text: 'three little words' });
      assert.deepEqual(JSON.parse(stats.content), { words: 3 });
      const fails = await run(u, 'calc__fails', {});
      assert.equal(fails.ok, false);
      assert.deepEqual(fails.error, { code: 'mcp_tool_error', message: 'The widget is out of stock' });
    });

    test('a tool that never answers fails with a timeout; a server gone since its tools were listed fails with a clear error', async () => {
      const u = await createUser(t);
      const gone = await startMcpServer();
      assert.equal((await register(u, { name: 'slow', url: open.url })).status, 201);
      const goneId = (await register(u, { name: 'gone', url: gone.url })).body.id;
      const started = Date.now();
      const hang = await run(u, 'slow__hang', {});
      assert.equal(hang.ok, false);
      assert.equal(hang.error?.code, 'tool_timeout');
      assert.ok(Date.now() - started < 20_000, 'the turn is not stuck');

      assert.ok((await names(u)).includes('gone__add'));
      await gone.close();
      // The listing is cached, so the tool is still offered; the call finds nobody.
      const refused = await run(u, 'gone__add', { a: 1, b: 1 });
      assert.equal(refused.ok, false);
      assert.equal(refused.error?.code, 'mcp_unavailable');
      assert.match(refused.error!.message, /refused/);
      const listing = await t.api('GET', `/v1/mcp-servers/${goneId}/tools`, { token: u.accessToken });
      assert.equal(listing.status, 502);
      assert.match(listing.body.detail, /refused the connection/);
    });

    test("a project's servers: offered in its conversations only, narrowed by the allow-list, calls needing approval; others get 404", async () => {
      const [owner, other] = [await createUser(t), await createUser(t)];
      const projectId = await project(owner);
      const res = await register(owner, { name: 'shop', url: open.url, allowedTools: ['add', 'stats'], needsApproval: true }, projectId);
      assert.equal(res.status, 201, res.text);
      assert.equal(res.body.projectId, projectId);
      assert.equal(res.body.hasCredentials, false);
      assert.deepEqual(await names(owner, projectId), ['shop__add', 'shop__stats']);
      assert.ok((await offered(owner, projectId)).every((x) => x.needsApproval === true));
      assert.deepEqual(await names(owner), [], 'not outside the project');
      assert.deepEqual(await names(other, projectId), [], "not to someone else, even in the project's scope");

      const tools = await t.api('GET', `/v1/projects/${projectId}/mcp-servers/${res.body.id}/tools`, { token: owner.accessToken });
      assert.deepEqual(Object.fromEntries(tools.body.data.map((x: any) => [x.name, x.allowed])), { add: true, echo: false, stats: true, fails: false, hang: false });

      // A change takes effect at once (the cached listing is keyed by the row's version).
      const patched = await t.api('PATCH', `/v1/projects/${projectId}/mcp-servers/${res.body.id}`, { token: owner.accessToken, body: { allowedTools: ['echo'], needsApproval: false } });
      assert.equal(patched.status, 200, patched.text);
      assert.deepEqual(await names(owner, projectId), ['shop__echo']);
      const disabled = await t.api('PATCH', `/v1/projects/${projectId}/mcp-servers/${res.body.id}`, { token: owner.accessToken, body: { enabled: false } });
      assert.equal(disabled.body.enabled, false);
      assert.deepEqual(await names(owner, projectId), []);

      const base = `/v1/projects/${projectId}/mcp-servers`;
      for (const [method, path, body] of [
        ['GET', base, undefined],
        ['POST', base, { name: 'mine', url: open.url }],
        ['GET', `${base}/${res.body.id}`, undefined],
        ['PATCH', `${base}/${res.body.id}`, { enabled: true }],
        ['GET', `${base}/${res.body.id}/tools`, undefined],
        ['DELETE', `${base}/${res.body.id}`, undefined],
        ['GET', `/v1/mcp-servers/${res.body.id}`, undefined],
        ['DELETE', `/v1/mcp-servers/${res.body.id}`, undefined],
      ] as const) {
        const r = await t.api(method, path, { token: other.accessToken, body });
        assert.equal(r.status, 404, `${method} ${path}: ${r.text}`);
        assert.match(r.headers.get('content-type') ?? '', /problem\+json/);
      }
      // A project server is not one of the owner's own either.
      assert.equal((await t.api('GET', `/v1/mcp-servers/${res.body.id}`, { token: owner.accessToken })).status, 404);
      assert.equal((await t.api('DELETE', `${base}/${res.body.id}`, { token: owner.accessToken })).status, 204);
      assert.equal((await t.api('GET', `${base}/${res.body.id}`, { token: owner.accessToken })).status, 404);
    });

    test("a user's own server is offered in their projects too, after the project's; a user switches a tool off for themselves", async () => {
      const u = await createUser(t);
      const projectId = await project(u);
      assert.equal((await register(u, { name: 'tools', url: open.url, allowedTools: ['add'] }, projectId)).status, 201);
      const own = await register(u, { name: 'mine', url: open.url, allowedTools: ['echo', 'add'] });
      assert.equal(own.status, 201);
      assert.deepEqual(await names(u, projectId), ['mine__add', 'mine__echo', 'tools__add']);

      assert.equal((await t.api('PUT', '/v1/mcp-tools/disabled/mine__echo', { token: u.accessToken })).status, 204);
      assert.equal((await t.api('PUT', '/v1/mcp-tools/disabled/mine__echo', { token: u.accessToken })).status, 204, 'twice is fine');
      assert.equal((await t.api('PUT', '/v1/mcp-tools/disabled/tools__add', { token: u.accessToken })).status, 204);
      assert.deepEqual(await names(u, projectId), ['mine__add']);
      const list = await t.api('GET', '/v1/mcp-tools/disabled', { token: u.accessToken });
      assert.deepEqual(list.body.data.map((x: any) => x.name), ['mine__echo', 'tools__add']);
      const tools = await t.api('GET', `/v1/mcp-servers/${own.body.id}/tools`, { token: u.accessToken });
      assert.equal(tools.body.data.find((x: any) => x.name === 'echo').disabled, true);
      // Only for them: another user's own server of the same name is untouched.
      const other = await createUser(t);
      assert.equal((await register(other, { name: 'mine', url: open.url, allowedTools: ['echo'] })).status, 201);
      assert.deepEqual(await names(other), ['mine__echo']);

      assert.equal((await t.api('DELETE', '/v1/mcp-tools/disabled/mine__echo', { token: u.accessToken })).status, 204);
      assert.deepEqual(await names(u, projectId), ['mine__add', 'mine__echo']);
      const page = await t.api('GET', '/v1/mcp-tools/disabled?limit=1', { token: u.accessToken });
      assert.deepEqual(page.body.data.map((x: any) => x.name), ['tools__add']);
    });

    test('credentials are replaced or removed; without them the server refuses and the tools are gone from the turn', async () => {
      const u = await createUser(t);
      const res = await register(u, { name: 'locked', url: mcp.url, credentials: { Authorization: 'Bearer wrong' } });
      assert.equal(res.status, 201);
      const failed = await t.api('GET', `/v1/mcp-servers/${res.body.id}/tools`, { token: u.accessToken });
      assert.equal(failed.status, 502, failed.text);
      assert.equal(failed.body.code, 'mcp_server_unavailable');
      assert.ok(!failed.text.includes('wrong'));
      assert.deepEqual(await names(u), []);
      const fixed = await t.api('PATCH', `/v1/mcp-servers/${res.body.id}`, { token: u.accessToken, body: { credentials: { Authorization: `Bearer ${TOKEN}` } } });
      assert.equal(fixed.body.hasCredentials, true);
      assert.ok((await names(u)).includes('locked__add'));
      const cleared = await t.api('PATCH', `/v1/mcp-servers/${res.body.id}`, { token: u.accessToken, body: { credentials: null } });
      assert.equal(cleared.body.hasCredentials, false);
      const [row] = await rows(t, sql`select credentials_enc from mcp_servers where id = ${res.body.id}`);
      assert.equal(row!.credentials_enc, null);
      assert.deepEqual(await names(u), []);
    });

    test('servers that are not MCP, or hang, give an empty listing within the time limit (and a 502 when asked directly); the others still work', async () => {
      const u = await createUser(t);
      const html = await startOtherServer({ status: 500, contentType: 'text/html', body: '<html><body>Internal error</body></html>' });
      const notRpc = await startOtherServer({ status: 200, contentType: 'application/json', body: '{"hello": "world"}' });
      const page = await startOtherServer({ status: 200, contentType: 'text/html', body: '<html>Welcome</html>' });
      const hang = await startOtherServer('hang');
      try {
        const ids: Record<string, string> = {};
        for (const [name, url] of [['html', html.url], ['notrpc', notRpc.url], ['page', page.url], ['hang', hang.url], ['good', open.url]]) {
          const res = await register(u, { name, url, allowedTools: ['add'] });
          assert.equal(res.status, 201, res.text);
          ids[name] = res.body.id;
        }
        const started = Date.now();
        assert.deepEqual(await names(u), ['good__add']);
        assert.ok(Date.now() - started < 20_000, 'the listing does not wait for ever');
        assert.equal((await run(u, 'good__add', { a: 20, b: 22 })).content, '42');
        for (const name of ['html', 'notrpc', 'page', 'hang']) {
          const res = await t.api('GET', `/v1/mcp-servers/${ids[name]}/tools`, { token: u.accessToken });
          assert.equal(res.status, 502, `${name}: ${res.text}`);
          assert.equal(res.body.code, 'mcp_server_unavailable');
          if (name === 'hang') assert.match(res.body.detail, /did not answer within 6000 ms/);
        }
        assert.ok(hang.hits > 0 && html.hits > 0);
      } finally {
        await Promise.all([html.close(), notRpc.close(), page.close(), hang.close()]);
      }
    });

    test('bad input gets a 400 problem; a name taken here a 409', async () => {
      const u = await createUser(t);
      const bad: Array<Record<string, unknown>> = [
        { name: 'Calc', url: open.url },
        { name: 'a__b', url: open.url },
        { name: '-x', url: open.url },
        { name: 'x'.repeat(33), url: open.url },
        { name: 'ok', url: 'not a url' },
        { name: 'ok', url: 'ftp://example.com/mcp' },
        { name: 'ok', url: 'http://user:pw@127.0.0.1/mcp' },
        { name: 'ok', url: open.url, credentials: { Host: 'evil.example' } },
        { name: 'ok', url: open.url, credentials: { 'X-Key': 'a\r\nX-Other: b' } },
        { name: 'ok', url: open.url, credentials: { 'Bad Header': 'v' } },
        { name: 'ok', url: open.url, credentials: 'Bearer x' },
        { name: 'ok', url: open.url, allowedTools: 'add' },
        { name: 'ok', url: open.url, surprise: true },
        { url: open.url },
      ];
      for (const body of bad) {
        const res = await register(u, body);
        assert.equal(res.status, 400, `${JSON.stringify(body)}: ${res.text}`);
        assert.match(res.headers.get('content-type') ?? '', /problem\+json/);
      }
      assert.equal((await t.api('POST', '/v1/mcp-servers', { token: u.accessToken, raw: '{"name": "x",' })).status, 400);
      const first = await register(u, { name: 'twice', url: open.url });
      assert.equal(first.status, 201);
      const dup = await register(u, { name: 'twice', url: open.url });
      assert.equal(dup.status, 409);
      assert.equal(dup.body.code, 'mcp_server_name_taken');
      // One name per owner: a project may use it.
      assert.equal((await register(u, { name: 'twice', url: open.url }, await project(u))).status, 201);
      assert.equal((await t.api('PATCH', `/v1/mcp-servers/${first.body.id}`, { token: u.accessToken, body: {} })).status, 400);
      assert.equal((await t.api('GET', '/v1/mcp-servers/not-a-uuid', { token: u.accessToken })).status, 400);
      assert.equal((await t.api('GET', '/v1/projects/not-a-uuid/mcp-servers', { token: u.accessToken })).status, 400);
      assert.equal((await t.api('PUT', `/v1/mcp-tools/disabled/${encodeURIComponent('has space')}`, { token: u.accessToken })).status, 400);
      assert.equal((await t.api('GET', '/v1/mcp-tools/disabled?cursor=!!', { token: u.accessToken })).status, 400);
      assert.equal((await t.api('GET', '/v1/mcp-servers')).status, 401);
    });
  });

  describe(`MCP servers, at most MCP_MAX_SERVERS per owner [${backend}]`, () => {
    const CAP = 3;
    let t: TestApp;

    before(async () => {
      t = await startApp({ backend, env: { MCP_ALLOW_PRIVATE: 'true', MCP_MAX_SERVERS: String(CAP) } });
    });
    after(async () => {
      await t?.close();
    });

    test('registrations side by side store exactly the cap; the others get 409 mcp_server_limit', async () => {
      const u = await createUser(t);
      // Nothing listens there: a registration does not connect.
      const results = await Promise.all(
        Array.from({ length: 20 }, (_, i) => t.api('POST', '/v1/mcp-servers', { token: u.accessToken, body: { name: `s${i}`, url: `http://127.0.0.1:9/mcp${i}` } })),
      );
      const created = results.filter((res) => res.status === 201);
      const refused = results.filter((res) => res.status !== 201);
      assert.equal(created.length, CAP, results.map((res) => res.status).join(' '));
      for (const res of refused) {
        assert.equal(res.status, 409, res.text);
        assert.equal(res.body.code, 'mcp_server_limit');
      }
      const [stored] = await rows(t, sql`select count(*)::int as n from mcp_servers where user_id = ${u.id}`);
      assert.equal(stored!.n, CAP);
    });
  });
}
