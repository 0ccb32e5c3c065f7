import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { backends, startApp, type TestApp } from '../../support/app.ts';
import { createUser, type TestUser } from '../../support/factories.ts';

type Storage = { userId: string; bytes: number; sources: Array<{ source: string; items: number; bytes: number }> };
const bytes = (...texts: string[]) => texts.reduce((n, s) => n + Buffer.byteLength(s), 0);
/** `{source: [items, bytes]}`, easier to compare. */
const bySource = (s: Storage) => Object.fromEntries(s.sources.map((x) => [x.source, [x.items, x.bytes]]));

for (const backend of backends()) {
  describe(`storage report [${backend}]`, () => {
    let t: TestApp;
    let admin: TestUser;
    let u: TestUser;
    let other: TestUser;

    before(async () => {
      // Refreshed here by hand, never by the schedule in the middle of a test.
      t = await startApp({ backend, env: { SCHEDULES: 'usage.storage=off' } });
      admin = await createUser(t, { admin: true });
      u = await createUser(t);
      other = await createUser(t);
    });
    after(() => t.close());

    const storageOf = async (user: TestUser): Promise<Storage> => {
      const res = await t.api('GET', '/v1/usage/storage', { token: user.accessToken });
      assert.equal(res.status, 200, res.text);
      return res.body;
    };

    /** A project with a prompt, and a titled conversation in it. */
    async function chatOf(user: TestUser, names: { project: string; prompt: string; title: string }) {
      const project = await t.api('POST', '/v1/projects', { token: user.accessToken, body: { name: names.project, description: 'd', systemPrompt: names.prompt } });
      assert.equal(project.status, 201, project.text);
      const conversation = await t.api('POST', '/v1/conversations', { token: user.accessToken, body: { title: names.title, projectId: project.body.id } });
      assert.equal(conversation.status, 201, conversation.text);
      return conversation.body.id as string;
    }

    test('exact figures that follow what is added and deleted; nobody else\'s count', async () => {
      assert.deepEqual(await storageOf(u), {
        userId: u.id,
        bytes: 0,
        sources: ['conversations', 'document_versions', 'documents', 'files', 'messages', 'notifications', 'projects', 'prompts'].map((source) => ({ source, items: 0, bytes: 0 })),
      });

      // Multi-byte text: bytes, not characters, are counted.
      const title = 'Reisepläne ✈️';
      const conversationId = await chatOf(u, { project: 'Agent ü', prompt: 'Sei knapp. 🙂', title });
      const question = 'Wie weit ist es nach Zürich?';
      const answer = 'Etwa 300 km — 3 h mit dem Zug.';
      const m = t.services.messages;
      const asked = await m.appendUserMessage(u.id, conversationId, { content: question });
      const placeholder = await m.createAssistantPlaceholder(conversationId, { parentId: asked.id });
      await m.completeAssistant(placeholder.id, { text: answer, provider: 'openai', model: 'gpt-4o-mini', tokensIn: 1, tokensOut: 1, costMicros: 1, latencyMs: 1, ttftMs: 1, finishReason: 'stop' });
      // Someone else's things never count as u's.
      const othersConversation = await chatOf(other, { project: 'Other', prompt: 'x'.repeat(1000), title: 'y'.repeat(150) });
      await m.appendUserMessage(other.id, othersConversation, { content: 'z'.repeat(2000) });

      let mine = await storageOf(u);
      assert.deepEqual(bySource(mine), {
        conversations: [1, bytes(title)],
        document_versions: [0, 0],
        documents: [0, 0],
        files: [0, 0],
        messages: [2, bytes(question, answer)],
        notifications: [0, 0],
        projects: [1, bytes('Agent ü', 'd')],
        prompts: [1, bytes('Default', 'Sei knapp. 🙂')],
      });
      assert.equal(mine.bytes, bytes(title, question, answer, 'Agent ü', 'd', 'Default', 'Sei knapp. 🙂'));
      assert.notEqual(bytes(question, answer), (question + answer).length, 'the texts have multi-byte characters');

      const more = 'Und zurück?';
      await m.appendUserMessage(u.id, conversationId, { content: more });
      mine = await storageOf(u);
      assert.deepEqual(bySource(mine).messages, [3, bytes(question, answer, more)]);

      assert.equal((await t.api('DELETE', `/v1/conversations/${conversationId}`, { token: u.accessToken })).status, 204);
      mine = await storageOf(u);
      assert.deepEqual(bySource(mine), { conversations: [0, 0], document_versions: [0, 0], documents: [0, 0], files: [0, 0], messages: [0, 0], notifications: [0, 0], projects: [1, bytes('Agent ü', 'd')], prompts: [1, bytes('Default', 'Sei knapp. 🙂')] });
      assert.deepEqual(bySource(await storageOf(other)).messages, [1, 2000], "u's deletion left other's messages alone");
    });

    test('admins list users by bytes stored, page by page, or one user', async () => {
      const list = async (query: string) => {
        const res = await t.api('GET', `/v1/admin/usage/storage?${query}`, { token: admin.accessToken });
        assert.equal(res.status, 200, res.text);
        return res.body as { data: Storage[]; nextCursor: string | null };
      };
      const all = await list('limit=100');
      assert.deepEqual(all.data.map((s) => s.userId), [other.id, u.id], 'most bytes first; the admin stores nothing');
      assert.deepEqual(all.data[1], await storageOf(u));
      assert.equal(all.nextCursor, null);

      const first = await list('limit=1');
      assert.deepEqual(first.data.map((s) => s.userId), [other.id]);
      assert.ok(first.nextCursor);
      const second = await list(`limit=1&cursor=${first.nextCursor}`);
      assert.deepEqual(second.data.map((s) => s.userId), [u.id]);
      assert.equal(second.nextCursor, null);

      assert.deepEqual((await list(`userId=${u.id}`)).data, [await storageOf(u)]);
      assert.deepEqual((await list(`userId=${admin.id}`)).data.map((s) => s.bytes), [0], 'asked for by id, a user storing nothing has zeros');
      const unknown = await t.api('GET', `/v1/admin/usage/storage?userId=${randomUUID()}`, { token: admin.accessToken });
      assert.equal(unknown.status, 404);
      assert.equal(unknown.body.code, 'user_not_found');
      const badCursor = await t.api('GET', '/v1/admin/usage/storage?cursor=bm9wZQ', { token: admin.accessToken });
      assert.equal(badCursor.status, 400);
      assert.match(badCursor.headers.get('content-type') ?? '', /application\/problem\+json/);
    });

    test('the listing reads the rollup: as of its last refresh, or of the last time one user was asked for', async () => {
      const list = async () => {
        const res = await t.api('GET', '/v1/admin/usage/storage?limit=100', { token: admin.accessToken });
        assert.equal(res.status, 200, res.text);
        return res.body as { data: Storage[]; asOf: string };
      };
      await t.services.footprint.refresh();
      const refreshedAt = Date.now();
      const w = await createUser(t);
      assert.equal((await t.api('POST', '/v1/conversations', { token: w.accessToken, body: { title: 'new since the refresh' } })).status, 201);
      let listed = await list();
      assert.ok(!listed.data.some((s) => s.userId === w.id), 'not in the rollup until it is refreshed');
      assert.ok(Date.parse(listed.asOf) <= refreshedAt, 'asOf says how old the figures are');

      await t.services.footprint.refresh();
      listed = await list();
      assert.deepEqual(bySource(listed.data.find((s) => s.userId === w.id)!).conversations, [1, bytes('new since the refresh')]);
      assert.ok(Date.parse(listed.asOf) >= refreshedAt);

      // Asking for one user's figures brings that user's row up to date at once.
      assert.equal((await t.api('POST', '/v1/conversations', { token: w.accessToken, body: { title: 'one more' } })).status, 201);
      assert.deepEqual(bySource(await storageOf(w)).conversations, [2, bytes('new since the refresh', 'one more')]);
      assert.deepEqual(bySource((await list()).data.find((s) => s.userId === w.id)!).conversations, [2, bytes('new since the refresh', 'one more')]);
    });

    test('only admins list everyone; an API key needs usage:read', async () => {
      const refused = await t.api('GET', '/v1/admin/usage/storage', { token: u.accessToken });
      assert.equal(refused.status, 403);
      assert.equal(refused.body.code, 'admin_required');
      const newKey = async (scopes: string[]) => (await t.api('POST', '/v1/api-keys', { token: u.accessToken, body: { name: scopes.join(), scopes } })).body.key as string;
      const without = await t.api('GET', '/v1/usage/storage', { token: await newKey(['chat']) });
      assert.equal(without.status, 403);
      assert.equal(without.body.code, 'insufficient_scope');
      const withScope = await t.api('GET', '/v1/usage/storage', { token: await newKey(['usage:read']) });
      assert.equal(withScope.status, 200);
      assert.equal(withScope.body.userId, u.id);
    });
  });
}
