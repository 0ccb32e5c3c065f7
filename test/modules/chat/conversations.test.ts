import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { sql } from 'drizzle-orm';
import { backends, startApp, type TestApp } from '../../support/app.ts';
import { createUser, type TestUser } from '../../support/factories.ts';

const ids = (res: { body: { data: Array<{ id: string }> } }) => res.body.data.map((c) => c.id);

for (const backend of backends()) {
  describe(`conversations [${backend}]`, () => {
    let t: TestApp;
    before(async () => {
      t = await startApp({ backend });
    });
    after(() => t.close());

    const create = async (u: TestUser, body: Record<string, unknown> = {}) => {
      const res = await t.api('POST', '/v1/conversations', { token: u.accessToken, body });
      assert.equal(res.status, 201, res.text);
      return res.body;
    };
    const project = async (u: TestUser) => (await t.api('POST', '/v1/projects', { token: u.accessToken, body: { name: 'P' } })).body;

    test('create, read, list', async () => {
      const u = await createUser(t);
      const p = await project(u);
      const c = await create(u, { title: '  Trip plans ', projectId: p.id, model: 'openai:gpt-4o-mini' });
      assert.equal(c.title, 'Trip plans');
      assert.equal(c.projectId, p.id);
      assert.equal(c.model, 'openai:gpt-4o-mini');
      assert.equal(c.pinned, false);
      assert.equal(c.archived, false);
      assert.equal(c.currentLeafId, null);
      assert.equal(c.createdAt, c.updatedAt);
      assert.deepEqual((await t.api('GET', `/v1/conversations/${c.id}`, { token: u.accessToken })).body, c);
      const bare = await create(u);
      assert.equal(bare.title, null);
      const list = await t.api('GET', '/v1/conversations', { token: u.accessToken });
      assert.deepEqual(list.body.data, [bare, c]);
      assert.equal(list.body.nextCursor, null);
    });

    test('with no body at all', async () => {
      const u = await createUser(t);
      const res = await t.api('POST', '/v1/conversations', { token: u.accessToken });
      assert.equal(res.status, 201, res.text);
      assert.equal(res.body.title, null);
    });

    test("projectId must be one of the caller's projects", async () => {
      const u = await createUser(t);
      const other = await createUser(t);
      const theirs = await project(other);
      const res = await t.api('POST', '/v1/conversations', { token: u.accessToken, body: { projectId: theirs.id } });
      assert.equal(res.status, 404);
      assert.equal(res.body.code, 'project_not_found');
      const c = await create(u);
      const patch = await t.api('PATCH', `/v1/conversations/${c.id}`, { token: u.accessToken, body: { projectId: theirs.id, title: 'x' } });
      assert.equal(patch.status, 404);
      assert.equal(patch.body.code, 'project_not_found');
      assert.deepEqual((await t.api('GET', `/v1/conversations/${c.id}`, { token: u.accessToken })).body, c);
      assert.deepEqual(ids(await t.api('GET', '/v1/conversations', { token: u.accessToken })), [c.id]);
    });

    test('PATCH renames, pins, archives, moves; archived ones leave the default list', async () => {
      const u = await createUser(t);
      const p = await project(u);
      const c = await create(u, { title: 'old' });
      const res = await t.api('PATCH', `/v1/conversations/${c.id}`, { token: u.accessToken, body: { title: 'new', pinned: true, projectId: p.id, model: 'anthropic:claude-3-5-haiku' } });
      assert.equal(res.status, 200, res.text);
      assert.equal(res.body.title, 'new');
      assert.equal(res.body.pinned, true);
      assert.equal(res.body.projectId, p.id);
      assert.ok(res.body.updatedAt > c.updatedAt);
      const cleared = await t.api('PATCH', `/v1/conversations/${c.id}`, { token: u.accessToken, body: { title: null, projectId: null, model: null } });
      assert.deepEqual([cleared.body.title, cleared.body.projectId, cleared.body.model, cleared.body.pinned], [null, null, null, true]);

      await t.api('PATCH', `/v1/conversations/${c.id}`, { token: u.accessToken, body: { archived: true } });
      assert.deepEqual(ids(await t.api('GET', '/v1/conversations', { token: u.accessToken })), []);
      assert.deepEqual(ids(await t.api('GET', '/v1/conversations?archived=true', { token: u.accessToken })), [c.id]);
    });

    test('filters: projectId, pinned, archived', async () => {
      const u = await createUser(t);
      const p = await project(u);
      const inProject = await create(u, { projectId: p.id });
      const pinned = await create(u, { pinned: true });
      const plain = await create(u);
      const q = async (query: string) => ids(await t.api('GET', `/v1/conversations?${query}`, { token: u.accessToken }));
      assert.deepEqual(await q(`projectId=${p.id}`), [inProject.id]);
      assert.deepEqual(await q('pinned=true'), [pinned.id]);
      assert.deepEqual(await q('pinned=false'), [plain.id, inProject.id]);
      assert.deepEqual(await q('archived=false'), [pinned.id, plain.id, inProject.id]);
      // Cursors the list never gave: not one at all, or a time PostgreSQL cannot read (it has no year 0).
      const cursor = (position: unknown[]) => `cursor=${Buffer.from(JSON.stringify(position)).toString('base64url')}`;
      const yearZero = cursor([0, '0000-01-01T00:00:00.000000Z', plain.id]);
      for (const bad of ['archived=maybe', 'pinned=2', 'projectId=nope', 'limit=0', 'limit=101', 'cursor=abc', yearZero]) {
        const res = await t.api('GET', `/v1/conversations?${bad}`, { token: u.accessToken });
        assert.equal(res.status, 400, bad);
        assert.equal(res.body.code, 'validation_failed', bad);
      }
    });

    test('list order: pinned first, then most recently updated; the cursor walks it exactly', async () => {
      const u = await createUser(t);
      const made: Array<{ id: string }> = [];
      for (let i = 0; i < 8; i++) made.push(await create(u, { title: `c${i}`, pinned: i === 2 || i === 5 }));
      // Times that differ only in microseconds (one JS millisecond), in an order unlike creation's, plus a tie.
      const micros = [500, 100, 300, 900, 100, 700, 800, 200];
      for (const [i, c] of made.entries()) {
        await t.deps.db.execute(sql`update conversations set updated_at = timestamptz '2030-01-01 00:00:00.123' + ${`${micros[i]} microseconds`}::interval where id = ${c.id}`);
      }
      const order = (xs: number[]) => xs.sort((a, b) => micros[b]! - micros[a]! || (made[b].id > made[a].id ? 1 : -1)).map((i) => made[i].id);
      const expected = [...order([2, 5]), ...order([0, 1, 3, 4, 6, 7])];
      assert.deepEqual(ids(await t.api('GET', '/v1/conversations?limit=100', { token: u.accessToken })), expected);
      for (const limit of [1, 2, 3]) {
        const walked: string[] = [];
        let cursor: string | null = null;
        do {
          const res = await t.api('GET', `/v1/conversations?limit=${limit}${cursor ? `&cursor=${cursor}` : ''}`, { token: u.accessToken });
          assert.equal(res.status, 200, res.text);
          assert.ok(res.body.data.length <= limit);
          walked.push(...ids(res));
          cursor = res.body.nextCursor;
        } while (cursor);
        assert.deepEqual(walked, expected, `limit ${limit}`);
      }
    });

    test('a new message moves the conversation to the top', async () => {
      const u = await createUser(t);
      const older = await create(u);
      const newer = await create(u);
      assert.deepEqual(ids(await t.api('GET', '/v1/conversations', { token: u.accessToken })), [newer.id, older.id]);
      await t.services.messages.appendUserMessage(u.id, older.id, { content: 'hello again' });
      assert.deepEqual(ids(await t.api('GET', '/v1/conversations', { token: u.accessToken })), [older.id, newer.id]);
    });

    test('delete removes the conversation and its messages', async () => {
      const u = await createUser(t);
      const c = await create(u);
      const m = await t.services.messages.appendUserMessage(u.id, c.id, { content: 'bye' });
      assert.equal((await t.api('DELETE', `/v1/conversations/${c.id}`, { token: u.accessToken })).status, 204);
      const gone = await t.api('GET', `/v1/conversations/${c.id}`, { token: u.accessToken });
      assert.equal(gone.status, 404);
      assert.equal(gone.body.code, 'conversation_not_found');
      assert.equal((await t.api('DELETE', `/v1/conversations/${c.id}`, { token: u.accessToken })).status, 404);
      assert.equal(await t.services.messages.historyFor(c.id, m.id).then((h) => h.length), 0);
    });

    test('deleting its project detaches the conversation', async () => {
      const u = await createUser(t);
      const p = await project(u);
      const c = await create(u, { projectId: p.id });
      assert.equal((await t.api('DELETE', `/v1/projects/${p.id}`, { token: u.accessToken })).status, 204);
      const kept = await t.api('GET', `/v1/conversations/${c.id}`, { token: u.accessToken });
      assert.equal(kept.status, 200);
      assert.equal(kept.body.projectId, null);
    });

    test('bad input is a 400 and changes nothing', async () => {
      const u = await createUser(t);
      const c = await create(u, { title: 'keep' });
      const bad: Array<Record<string, unknown>> = [
        { title: '' },
        { title: '\u200b\u2060 \ufeff' },
        { title: 't'.repeat(201) },
        { title: 5 },
        { pinned: 'yes' },
        { model: 'no-provider' },
        { projectId: 'nope' },
        { currentLeafId: c.id },
        { userId: u.id },
      ];
      for (const body of bad) {
        const created = await t.api('POST', '/v1/conversations', { token: u.accessToken, body });
        assert.equal(created.status, 400, `POST ${JSON.stringify(body)}`);
        assert.equal(created.body.code, 'validation_failed');
        const patched = await t.api('PATCH', `/v1/conversations/${c.id}`, { token: u.accessToken, body });
        assert.equal(patched.status, 400, `PATCH ${JSON.stringify(body)}`);
      }
      assert.equal((await t.api('PATCH', `/v1/conversations/${c.id}`, { token: u.accessToken, body: { archived: 'no' } })).status, 400);
      assert.equal((await t.api('POST', '/v1/conversations', { token: u.accessToken, raw: '[' })).status, 400);
      assert.deepEqual((await t.api('GET', `/v1/conversations/${c.id}`, { token: u.accessToken })).body, c);
      assert.deepEqual(ids(await t.api('GET', '/v1/conversations', { token: u.accessToken })), [c.id]);
    });

    test('an API key with the chat scope works; others are refused', async () => {
      const u = await createUser(t);
      const chat = (await t.api('POST', '/v1/api-keys', { token: u.accessToken, body: { name: 'c', scopes: ['chat'] } })).body.key;
      const profile = (await t.api('POST', '/v1/api-keys', { token: u.accessToken, body: { name: 'p', scopes: ['profile:read'] } })).body.key;
      assert.equal((await t.api('POST', '/v1/conversations', { token: chat, body: {} })).status, 201);
      const refused = await t.api('GET', '/v1/conversations', { token: profile });
      assert.equal(refused.status, 403);
      assert.equal(refused.body.code, 'insufficient_scope');
    });
  });
}
