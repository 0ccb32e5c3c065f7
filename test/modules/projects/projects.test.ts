import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { sql } from 'drizzle-orm';
import { backends, startApp, type TestApp } from '../../support/app.ts';
import { createUser, type TestUser } from '../../support/factories.ts';

for (const backend of backends()) {
  describe(`projects [${backend}]`, () => {
    let t: TestApp;
    before(async () => {
      t = await startApp({ backend });
    });
    after(() => t.close());

    const create = async (u: TestUser, body: Record<string, unknown>) => {
      const res = await t.api('POST', '/v1/projects', { token: u.accessToken, body });
      assert.equal(res.status, 201, res.text);
      return res.body;
    };

    test('create with every setting, then read it back', async () => {
      const u = await createUser(t);
      const body = {
        name: '  Support bot ',
        description: 'Answers tickets',
        model: 'openai:gpt-4o-mini',
        fallbackModels: ['anthropic:claude-3-5-haiku', 'ollama:llama3:8b', 'anthropic:claude-3-5-haiku'],
        temperature: 0.7,
        maxTokens: 2048,
        tools: ['fetch_url', 'current_time'],
      };
      const p = await create(u, body);
      assert.equal(p.name, 'Support bot');
      assert.equal(p.description, 'Answers tickets');
      assert.equal(p.model, 'openai:gpt-4o-mini');
      assert.deepEqual(p.fallbackModels, ['anthropic:claude-3-5-haiku', 'ollama:llama3:8b'], 'duplicates dropped');
      assert.equal(p.temperature, 0.7);
      assert.equal(p.maxTokens, 2048);
      assert.deepEqual(p.tools, ['fetch_url', 'current_time']);
      assert.equal(p.activePromptId, null);
      assert.equal(p.activePrompt, null);
      const got = await t.api('GET', `/v1/projects/${p.id}`, { token: u.accessToken });
      assert.equal(got.status, 200);
      assert.deepEqual(got.body, p);
    });

    test('defaults: only a name', async () => {
      const u = await createUser(t);
      const p = await create(u, { name: 'Plain' });
      assert.deepEqual(
        { description: p.description, model: p.model, fallbackModels: p.fallbackModels, temperature: p.temperature, maxTokens: p.maxTokens, tools: p.tools },
        { description: null, model: null, fallbackModels: [], temperature: null, maxTokens: null, tools: [] },
      );
    });

    test('systemPrompt creates an active "Default" prompt, shown on the project', async () => {
      const u = await createUser(t);
      const p = await create(u, { name: 'With prompt', systemPrompt: 'You are terse.' });
      assert.ok(p.activePromptId);
      assert.equal(p.activePrompt.id, p.activePromptId);
      assert.equal(p.activePrompt.name, 'Default');
      assert.equal(p.activePrompt.content, 'You are terse.');
      assert.equal(p.activePrompt.active, true);
    });

    test('PATCH changes only what is sent; null clears', async () => {
      const u = await createUser(t);
      const p = await create(u, { name: 'A', model: 'openai:gpt-4o', temperature: 1, tools: ['current_time'] });
      const res = await t.api('PATCH', `/v1/projects/${p.id}`, { token: u.accessToken, body: { name: 'B', model: null } });
      assert.equal(res.status, 200, res.text);
      assert.equal(res.body.name, 'B');
      assert.equal(res.body.model, null);
      assert.equal(res.body.temperature, 1);
      assert.deepEqual(res.body.tools, ['current_time']);
      assert.ok(res.body.updatedAt >= p.updatedAt);
      const empty = await t.api('PATCH', `/v1/projects/${p.id}`, { token: u.accessToken, body: {} });
      assert.equal(empty.status, 200);
      assert.equal(empty.body.name, 'B');
    });

    test('a tool no source lists is a 400 naming it, on create and on change; names a project already has still pass', async () => {
      const u = await createUser(t);
      const refused = await t.api('POST', '/v1/projects', { token: u.accessToken, body: { name: 'Typo', tools: ['current_time', 'web_serch'], toolApprovals: ['fetch_ur1'] } });
      assert.equal(refused.status, 400, refused.text);
      assert.equal(refused.body.code, 'unknown_tool');
      assert.deepEqual(refused.body.tools, ['web_serch', 'fetch_ur1']);
      assert.match(refused.body.detail, /web_serch, fetch_ur1/);
      assert.equal((await t.api('GET', '/v1/projects', { token: u.accessToken })).body.data.length, 0, 'nothing stored');

      const p = await create(u, { name: 'Tools', tools: ['current_time'] });
      const change = (body: Record<string, unknown>) => t.api('PATCH', `/v1/projects/${p.id}`, { token: u.accessToken, body });
      const typo = await change({ tools: ['current_time', 'nope'] });
      assert.deepEqual([typo.status, typo.body.code, typo.body.tools], [400, 'unknown_tool', ['nope']]);
      assert.deepEqual((await t.api('GET', `/v1/projects/${p.id}`, { token: u.accessToken })).body.tools, ['current_time'], 'unchanged');
      // A tool the deployment has since removed stays on the project without blocking other changes.
      await t.deps.db.execute(sql`update projects set tools = array['current_time', 'retired_tool'] where id = ${p.id}::uuid`);
      const kept = await change({ tools: ['retired_tool', 'fetch_url'], toolApprovals: ['fetch_url'] });
      assert.equal(kept.status, 200, kept.text);
      assert.deepEqual([kept.body.tools, kept.body.toolApprovals], [['retired_tool', 'fetch_url'], ['fetch_url']]);
    });

    test('toolApprovals may name a listed tool the project does not name in tools: it asks once offered, and never weakens anything', async () => {
      const u = await createUser(t);
      // MCP tools are offered without being named in `tools`, so their approvals can only be named here; a built-in one may be set ahead.
      const p = await t.api('POST', '/v1/projects', { token: u.accessToken, body: { name: 'Ahead', tools: ['current_time'], toolApprovals: ['fetch_url'] } });
      assert.equal(p.status, 201, p.text);
      assert.deepEqual([p.body.tools, p.body.toolApprovals], [['current_time'], ['fetch_url']]);
      // Dropping a tool from `tools` does not have to drop its approval in the same change.
      const dropped = await t.api('PATCH', `/v1/projects/${p.body.id}`, { token: u.accessToken, body: { tools: [] } });
      assert.equal(dropped.status, 200, dropped.text);
      assert.deepEqual([dropped.body.tools, dropped.body.toolApprovals], [[], ['fetch_url']]);
      // A name no source lists is still a typo refused, in toolApprovals alone too.
      const typo = await t.api('PATCH', `/v1/projects/${p.body.id}`, { token: u.accessToken, body: { toolApprovals: ['fetch_ur1'] } });
      assert.deepEqual([typo.status, typo.body.code, typo.body.tools], [400, 'unknown_tool', ['fetch_ur1']]);
    });

    test('bad input is a 400 problem and stores nothing', async () => {
      const u = await createUser(t);
      const bad: Array<Record<string, unknown>> = [
        {},
        { name: '' },
        { name: '   ' },
        { name: 'x'.repeat(101) },
        { name: 7 },
        { name: 'x', model: 'gpt-4o' },
        { name: 'x', model: 'openai:' },
        { name: 'x', model: `openai:${'m'.repeat(300)}` },
        { name: 'x', fallbackModels: 'openai:gpt-4o' },
        { name: 'x', fallbackModels: ['nope'] },
        { name: 'x', temperature: 2.5 },
        { name: 'x', temperature: -0.1 },
        { name: 'x', temperature: '1' },
        { name: 'x', maxTokens: 0 },
        { name: 'x', maxTokens: 1.5 },
        { name: 'x', tools: ['has space'] },
        { name: 'x', tools: Array.from({ length: 65 }, (_, i) => `t${i}`) },
        { name: 'x', description: 'd'.repeat(2001) },
        { name: 'x', systemPrompt: '' },
        { name: 'x', systemPrompt: 'p'.repeat(100_001) },
        { name: 'x', userId: '00000000-0000-7000-8000-000000000000' },
        { name: 'x', activePromptId: null },
      ];
      for (const body of bad) {
        const res = await t.api('POST', '/v1/projects', { token: u.accessToken, body });
        assert.equal(res.status, 400, JSON.stringify(body).slice(0, 100));
        assert.equal(res.body.code, 'validation_failed');
        assert.equal(res.headers.get('content-type'), 'application/problem+json; charset=utf-8');
      }
      const malformed = await t.api('POST', '/v1/projects', { token: u.accessToken, raw: '{"name":' });
      assert.equal(malformed.status, 400);
      assert.equal(malformed.body.code, 'malformed_json');
      assert.deepEqual((await t.api('GET', '/v1/projects', { token: u.accessToken })).body.data, []);

      const p = await create(u, { name: 'Keep', temperature: 0.5 });
      for (const body of [{ name: '' }, { temperature: 3 }, { activePromptId: 'nope' }, { fallbackModels: [1] }]) {
        const res = await t.api('PATCH', `/v1/projects/${p.id}`, { token: u.accessToken, body });
        assert.equal(res.status, 400, JSON.stringify(body));
      }
      assert.deepEqual((await t.api('GET', `/v1/projects/${p.id}`, { token: u.accessToken })).body, p);
      assert.equal((await t.api('GET', '/v1/projects/not-a-uuid', { token: u.accessToken })).status, 400);
    });

    test('a temperature too small for its 32-bit float column is a 400, not a database 500', async () => {
      const u = await createUser(t);
      for (const temperature of [1e-300, 1e-40, 5e-324]) {
        const res = await t.api('POST', '/v1/projects', { token: u.accessToken, body: { name: 'tiny', temperature } });
        assert.equal(res.status, 400, res.text);
        assert.equal(res.body.code, 'validation_failed');
        assert.deepEqual(res.body.errors.map((e: { path: string }) => e.path), ['/temperature']);
        assert.equal(res.headers.get('content-type'), 'application/problem+json; charset=utf-8');
      }
      const p = await create(u, { name: 'Keep', temperature: 0.5 });
      const patched = await t.api('PATCH', `/v1/projects/${p.id}`, { token: u.accessToken, raw: '{"temperature":1e-300}' });
      assert.equal(patched.status, 400, patched.text);
      assert.equal(patched.body.code, 'validation_failed');
      assert.deepEqual((await t.api('GET', `/v1/projects/${p.id}`, { token: u.accessToken })).body, p);
      // The smallest normal float4 and zero are stored.
      const smallest = await create(u, { name: 'smallest', temperature: 2 ** -126 });
      assert.equal(Math.fround(smallest.temperature), 2 ** -126);
      assert.equal((await create(u, { name: 'zero', temperature: 0 })).temperature, 0);
    });

    test('list pages with a cursor, newest first', async () => {
      const u = await createUser(t);
      const ids: string[] = [];
      for (const name of ['a', 'b', 'c']) ids.push((await create(u, { name })).id);
      const p1 = await t.api('GET', '/v1/projects?limit=2', { token: u.accessToken });
      assert.deepEqual(p1.body.data.map((p: { id: string }) => p.id), [ids[2], ids[1]]);
      const p2 = await t.api('GET', `/v1/projects?limit=2&cursor=${p1.body.nextCursor}`, { token: u.accessToken });
      assert.deepEqual(p2.body.data.map((p: { id: string }) => p.id), [ids[0]]);
      assert.equal(p2.body.nextCursor, null);
      assert.equal((await t.api('GET', '/v1/projects?cursor=zzz', { token: u.accessToken })).status, 400);
    });

    test('delete removes the project and its prompts', async () => {
      const u = await createUser(t);
      const p = await create(u, { name: 'Doomed', systemPrompt: 'hi' });
      assert.equal((await t.api('DELETE', `/v1/projects/${p.id}`, { token: u.accessToken })).status, 204);
      assert.equal((await t.api('GET', `/v1/projects/${p.id}`, { token: u.accessToken })).status, 404);
      assert.equal((await t.api('GET', `/v1/projects/${p.id}/prompts/${p.activePromptId}`, { token: u.accessToken })).status, 404);
      const again = await t.api('DELETE', `/v1/projects/${p.id}`, { token: u.accessToken });
      assert.equal(again.status, 404);
      assert.equal(again.body.code, 'project_not_found');
    });

    test("what was made in a project stays its owner's when the project goes, without the project's id", async () => {
      const u = await createUser(t);
      const p = await create(u, { name: 'Short-lived' });
      const as = (method: string, path: string, body?: unknown) => t.api(method, path, { token: u.accessToken, body });
      const doc = await as('POST', '/v1/documents', { title: 'Notes', projectId: p.id });
      const collection = await as('POST', '/v1/knowledge/collections', { name: 'Sources', projectId: p.id });
      const conversation = await as('POST', '/v1/conversations', { projectId: p.id });
      assert.deepEqual([doc.status, collection.status, conversation.status], [201, 201, 201]);
      assert.equal((await as('DELETE', `/v1/projects/${p.id}`)).status, 204);
      const after = await Promise.all([`/v1/documents/${doc.body.id}`, `/v1/knowledge/collections/${collection.body.id}`, `/v1/conversations/${conversation.body.id}`].map((path) => as('GET', path)));
      assert.deepEqual(after.map((r) => [r.status, r.body.projectId]), [[200, null], [200, null], [200, null]]);
      assert.deepEqual((await as('GET', `/v1/documents?projectId=${p.id}`)).body.data, []);
    });

    test('an API key needs the chat scope', async () => {
      const u = await createUser(t);
      const chat = await t.api('POST', '/v1/api-keys', { token: u.accessToken, body: { name: 'chat', scopes: ['chat'] } });
      const other = await t.api('POST', '/v1/api-keys', { token: u.accessToken, body: { name: 'profile', scopes: ['profile:read'] } });
      const created = await t.api('POST', '/v1/projects', { token: chat.body.key, body: { name: 'via key' } });
      assert.equal(created.status, 201);
      assert.equal((await t.api('GET', '/v1/projects', { token: chat.body.key })).body.data.length, 1);
      const refused = await t.api('GET', '/v1/projects', { token: other.body.key });
      assert.equal(refused.status, 403);
      assert.equal(refused.body.code, 'insufficient_scope');
      assert.equal((await t.api('GET', '/v1/projects')).status, 401);
    });

    test('the routes are in the OpenAPI document', async () => {
      const doc = await t.api('GET', '/openapi.json');
      assert.equal(doc.status, 200);
      assert.ok(doc.body.paths['/v1/projects'].post);
      assert.ok(doc.body.paths['/v1/projects/{id}'].patch);
      assert.ok(doc.body.paths['/v1/projects/{id}/prompts/{promptId}/activate'].post);
      assert.ok(doc.body.components.schemas.Project);
      assert.ok(doc.body.components.schemas.ProjectPrompt);
    });
  });
}
