import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { MessageRow } from '../../../src/modules/chat/messages.ts';
import { backends, startApp, type TestApp } from '../../support/app.ts';
import { createUser, type TestUser } from '../../support/factories.ts';

const done = { provider: 'openai', model: 'gpt-4o-mini', tokensIn: 12, tokensOut: 34, cachedTokens: 2, costMicros: 1_234_567, latencyMs: 800, ttftMs: 120, finishReason: 'stop' };
const texts = (res: { body: { data: Array<{ content: Array<{ text: string }> }> } }) => res.body.data.map((m) => m.content.map((p) => p.text).join(''));

for (const backend of backends()) {
  describe(`messages [${backend}]`, () => {
    let t: TestApp;
    before(async () => {
      t = await startApp({ backend });
    });
    after(() => t.close());

    const conversation = async (u: TestUser) => (await t.api('POST', '/v1/conversations', { token: u.accessToken, body: { title: 'Chat' } })).body;
    const answer = async (conversationId: string, parentId: string, text: string, fields = done) => {
      const placeholder = await t.services.messages.createAssistantPlaceholder(conversationId, { parentId, provider: fields.provider, model: fields.model });
      return t.services.messages.completeAssistant(placeholder.id, { text, ...fields });
    };

    /**
     * u1 → a1 → u2 → a2            (the first branch)
     *           ↘ u2b → a2b        (u2 edited)
     *                 ↘ a2c        (a2b regenerated; failed midway)
     */
    async function tree(u: TestUser) {
      const c = await conversation(u);
      const m = t.services.messages;
      const u1 = await m.appendUserMessage(u.id, c.id, { content: 'Hello there' });
      const a1 = await answer(c.id, u1.id, 'Hi! How can I help?');
      const u2 = await m.appendUserMessage(u.id, c.id, { content: 'Tell me about otters' });
      const a2 = await answer(c.id, u2.id, 'Otters are playful.');
      const u2b = await m.appendUserMessage(u.id, c.id, { parentId: a1.id, content: [{ type: 'text', text: 'Tell me about seals' }] });
      const a2b = await answer(c.id, u2b.id, 'Seals are pinnipeds.');
      const a2cPlaceholder = await m.createAssistantPlaceholder(c.id, { parentId: u2b.id, provider: 'openai', model: 'gpt-4o' });
      const attempts = [{ provider: 'anthropic', model: 'claude', error: 'overloaded', code: 'upstream_overloaded', status: 529, at: new Date().toISOString() }];
      const a2c = await m.failAssistant(a2cPlaceholder.id, 'Seals are', { code: 'stream_interrupted', message: 'connection lost' }, attempts);
      return { c, u1, a1, u2, a2, u2b, a2b, a2c };
    }

    test('the current branch, first to last, with every field', async () => {
      const u = await createUser(t);
      const { c, u1, a1, u2b, a2c } = await tree(u);
      const res = await t.api('GET', `/v1/conversations/${c.id}/messages`, { token: u.accessToken });
      assert.equal(res.status, 200, res.text);
      assert.equal(res.body.conversationId, c.id);
      assert.equal(res.body.leafId, a2c.id);
      assert.deepEqual(res.body.data.map((m: { id: string }) => m.id), [u1.id, a1.id, u2b.id, a2c.id]);
      assert.deepEqual(texts(res), ['Hello there', 'Hi! How can I help?', 'Tell me about seals', 'Seals are']);
      const [first, answer1, , failed] = res.body.data;
      assert.equal(first.role, 'user');
      assert.equal(first.parentId, null);
      assert.equal(first.status, 'complete');
      assert.equal(first.cost, null);
      assert.deepEqual(first.content, [{ type: 'text', text: 'Hello there' }]);
      assert.deepEqual(
        { ...answer1, id: undefined, createdAt: undefined, completedAt: undefined, siblingIds: undefined },
        {
          ...answer1,
          id: undefined, createdAt: undefined, completedAt: undefined, siblingIds: undefined,
          conversationId: c.id, parentId: u1.id, role: 'assistant', status: 'complete',
          provider: 'openai', model: 'gpt-4o-mini', tokensIn: 12, tokensOut: 34, cachedTokens: 2,
          costMicros: 1_234_567, cost: '1.234567', latencyMs: 800, ttftMs: 120, finishReason: 'stop',
          error: null, attempts: [], siblingIndex: 0, feedback: null,
        },
      );
      assert.ok(answer1.completedAt >= answer1.createdAt);
      assert.equal(failed.status, 'failed');
      assert.deepEqual(failed.error, { code: 'stream_interrupted', message: 'connection lost' });
      assert.equal(failed.attempts[0].code, 'upstream_overloaded');
      assert.equal(failed.attempts[0].status, 529);
    });

    test('siblings let a UI switch branches', async () => {
      const u = await createUser(t);
      const { c, u1, u2, u2b, a2b, a2c } = await tree(u);
      const res = await t.api('GET', `/v1/conversations/${c.id}/messages`, { token: u.accessToken });
      const [m1, , m3, m4] = res.body.data;
      assert.deepEqual(m1.siblingIds, [u1.id]);
      assert.deepEqual(m3.siblingIds, [u2.id, u2b.id]);
      assert.equal(m3.siblingIndex, 1);
      assert.deepEqual(m4.siblingIds, [a2b.id, a2c.id]);
      assert.equal(m4.siblingIndex, 1);
    });

    test('?leafId= reads another branch; it must belong to the conversation', async () => {
      const u = await createUser(t);
      const { c, u1, a1, u2, a2, a2c } = await tree(u);
      const old = await t.api('GET', `/v1/conversations/${c.id}/messages?leafId=${a2.id}`, { token: u.accessToken });
      assert.equal(old.status, 200);
      assert.equal(old.body.leafId, a2.id);
      assert.deepEqual(old.body.data.map((m: { id: string }) => m.id), [u1.id, a1.id, u2.id, a2.id]);
      assert.equal(old.body.data[2].siblingIndex, 0);
      const middle = await t.api('GET', `/v1/conversations/${c.id}/messages?leafId=${a1.id}`, { token: u.accessToken });
      assert.deepEqual(middle.body.data.map((m: { id: string }) => m.id), [u1.id, a1.id]);

      const elsewhere = await tree(u);
      const foreign = await t.api('GET', `/v1/conversations/${c.id}/messages?leafId=${elsewhere.a2b.id}`, { token: u.accessToken });
      assert.equal(foreign.status, 404);
      assert.equal(foreign.body.code, 'message_not_found');
      assert.equal((await t.api('GET', `/v1/conversations/${c.id}/messages?leafId=nope`, { token: u.accessToken })).status, 400);
      assert.equal((await t.api('GET', `/v1/conversations/${c.id}`, { token: u.accessToken })).body.currentLeafId, a2c.id, 'reading a branch does not switch to it');
    });

    test('an empty conversation has an empty branch', async () => {
      const u = await createUser(t);
      const c = await conversation(u);
      const res = await t.api('GET', `/v1/conversations/${c.id}/messages`, { token: u.accessToken });
      assert.deepEqual(res.body, { conversationId: c.id, leafId: null, data: [] });
      assert.deepEqual(await t.services.messages.historyFor(c.id), []);
    });

    test('select switches to the newest leaf below a message', async () => {
      const u = await createUser(t);
      const { c, u1, a1, u2, a2, u2b, a2b, a2c } = await tree(u);
      const toOld = await t.api('POST', `/v1/conversations/${c.id}/messages/${u2.id}/select`, { token: u.accessToken });
      assert.equal(toOld.status, 200, toOld.text);
      assert.equal(toOld.body.leafId, a2.id);
      assert.deepEqual(toOld.body.data.map((m: { id: string }) => m.id), [u1.id, a1.id, u2.id, a2.id]);
      assert.equal((await t.api('GET', `/v1/conversations/${c.id}`, { token: u.accessToken })).body.currentLeafId, a2.id);

      const fromRoot = await t.api('POST', `/v1/conversations/${c.id}/messages/${u1.id}/select`, { token: u.accessToken });
      assert.equal(fromRoot.body.leafId, a2c.id, 'newest reply at every step');
      const toB = await t.api('POST', `/v1/conversations/${c.id}/messages/${a2b.id}/select`, { token: u.accessToken });
      assert.deepEqual(toB.body.data.map((m: { id: string }) => m.id), [u1.id, a1.id, u2b.id, a2b.id]);

      const other = await tree(u);
      const foreign = await t.api('POST', `/v1/conversations/${c.id}/messages/${other.u1.id}/select`, { token: u.accessToken });
      assert.equal(foreign.status, 404);
      assert.equal((await t.api('GET', `/v1/conversations/${c.id}`, { token: u.accessToken })).body.currentLeafId, a2b.id);
    });

    test('one message, with its siblings', async () => {
      const u = await createUser(t);
      const { c, u2, u2b } = await tree(u);
      const res = await t.api('GET', `/v1/conversations/${c.id}/messages/${u2.id}`, { token: u.accessToken });
      assert.equal(res.status, 200);
      assert.equal(res.body.id, u2.id);
      assert.deepEqual(res.body.siblingIds, [u2.id, u2b.id]);
      assert.equal(res.body.siblingIndex, 0);
      const other = await conversation(u);
      const wrong = await t.api('GET', `/v1/conversations/${other.id}/messages/${u2.id}`, { token: u.accessToken });
      assert.equal(wrong.status, 404);
      assert.equal(wrong.body.code, 'message_not_found');
    });

    test('write helpers: placeholder streams, then completes once', async () => {
      const u = await createUser(t);
      const c = await conversation(u);
      const m = t.services.messages;
      const q = await m.appendUserMessage(u.id, c.id, { content: 'Q' });
      const p = await m.createAssistantPlaceholder(c.id, { parentId: q.id, model: 'gpt-4o-mini' });
      assert.equal(p.status, 'streaming');
      assert.equal(p.userId, u.id);
      assert.deepEqual(p.content, []);
      const during = await t.api('GET', `/v1/conversations/${c.id}/messages`, { token: u.accessToken });
      assert.equal(during.body.leafId, p.id);
      assert.equal(during.body.data[1].status, 'streaming');

      const finished = await m.completeAssistant(p.id, { ...done, text: 'A', costMicros: null });
      assert.equal(finished.status, 'complete');
      assert.equal(finished.text, 'A');
      assert.ok(finished.completedAt);
      await assert.rejects(m.completeAssistant(p.id, { ...done, text: 'again' }), { code: 'message_not_streaming', status: 409 });
      await assert.rejects(m.failAssistant(p.id, '', { code: 'x', message: 'x' }), { code: 'message_not_streaming' });
      await assert.rejects(m.completeAssistant('00000000-0000-7000-8000-000000000000', { ...done, text: 'x' }), { code: 'message_not_found' });
      const shown = await t.api('GET', `/v1/conversations/${c.id}/messages/${p.id}`, { token: u.accessToken });
      assert.equal(shown.body.cost, null);
      assert.equal(shown.body.costMicros, null);

      const p2 = await m.createAssistantPlaceholder(c.id, { parentId: q.id });
      const cancelled = await m.cancelAssistant(p2.id, 'partial');
      assert.equal(cancelled.status, 'cancelled');
      assert.equal(cancelled.finishReason, 'cancelled');
      assert.deepEqual(cancelled.content, [{ type: 'text', text: 'partial' }]);
    });

    test('historyFor: the branch for the model, first to last', async () => {
      const u = await createUser(t);
      const { c, u1, a1, u2, a2, u2b, a2c } = await tree(u);
      const ids = (rows: MessageRow[]) => rows.map((r) => r.id);
      assert.deepEqual(ids(await t.services.messages.historyFor(c.id)), [u1.id, a1.id, u2b.id, a2c.id]);
      assert.deepEqual(ids(await t.services.messages.historyFor(c.id, a2.id)), [u1.id, a1.id, u2.id, a2.id]);
      const rows = await t.services.messages.historyFor(c.id, u2b.id);
      assert.deepEqual(rows.map((r) => [r.role, r.text]), [['user', 'Hello there'], ['assistant', 'Hi! How can I help?'], ['user', 'Tell me about seals']]);
      await t.services.messages.setCurrentLeaf(c.id, a1.id);
      assert.deepEqual(ids(await t.services.messages.historyFor(c.id)), [u1.id, a1.id]);
      const other = await tree(u);
      await assert.rejects(t.services.messages.setCurrentLeaf(c.id, other.a1.id), { code: 'message_not_found' });
    });

    test('editing the first message starts a new root', async () => {
      const u = await createUser(t);
      const { c, u1 } = await tree(u);
      const edited = await t.services.messages.appendUserMessage(u.id, c.id, { parentId: null, content: 'Hello, edited' });
      const res = await t.api('GET', `/v1/conversations/${c.id}/messages`, { token: u.accessToken });
      assert.deepEqual(res.body.data.map((m: { id: string }) => m.id), [edited.id]);
      assert.deepEqual(res.body.data[0].siblingIds, [u1.id, edited.id]);
    });

    test('appendUserMessage checks owner, parent and size, and stores nothing when refused', async () => {
      const u = await createUser(t);
      const stranger = await createUser(t);
      const { c, a2c } = await tree(u);
      const other = await tree(u);
      const m = t.services.messages;
      await assert.rejects(m.appendUserMessage(stranger.id, c.id, { content: 'hi' }), { code: 'conversation_not_found', status: 404 });
      await assert.rejects(m.appendUserMessage(u.id, c.id, { parentId: other.a1.id, content: 'hi' }), { code: 'message_not_found' });
      await assert.rejects(m.appendUserMessage(u.id, c.id, { content: 'x'.repeat(100_001) }), { code: 'message_too_long', status: 400 });
      await assert.rejects(m.appendUserMessage(u.id, c.id, { content: [{ type: 'text', text: 'x'.repeat(60_000) }, { type: 'text', text: 'y'.repeat(60_000) }] }), { code: 'message_too_long' });
      await assert.rejects(m.appendUserMessage(u.id, c.id, { content: '  \n ' }), { code: 'message_empty' });
      await assert.rejects(m.createAssistantPlaceholder(c.id, { parentId: other.u1.id }), { code: 'message_not_found' });
      const res = await t.api('GET', `/v1/conversations/${c.id}/messages`, { token: u.accessToken });
      assert.equal(res.body.leafId, a2c.id);
      assert.equal(res.body.data.length, 4);
      const big = await m.appendUserMessage(u.id, c.id, { content: 'z'.repeat(100_000) });
      assert.equal(big.text.length, 100_000);
    });

    test('a long branch is read in one walk', async () => {
      const u = await createUser(t);
      const c = await conversation(u);
      let parentId: string | null = null;
      for (let i = 0; i < 150; i++) parentId = (await t.services.messages.appendUserMessage(u.id, c.id, { parentId, content: `m${i}` })).id;
      const res = await t.api('GET', `/v1/conversations/${c.id}/messages`, { token: u.accessToken });
      assert.equal(res.body.data.length, 150);
      assert.deepEqual(texts(res), Array.from({ length: 150 }, (_, i) => `m${i}`));
    });

    test('feedback on assistant messages: set, replace, show, remove', async () => {
      const u = await createUser(t);
      const { c, u1, a1 } = await tree(u);
      const path = `/v1/conversations/${c.id}/messages/${a1.id}/feedback`;
      const up = await t.api('PUT', path, { token: u.accessToken, body: { rating: 'up' } });
      assert.equal(up.status, 200, up.text);
      assert.equal(up.body.rating, 'up');
      assert.equal(up.body.comment, null);
      const down = await t.api('PUT', path, { token: u.accessToken, body: { rating: 'down', comment: ' too vague ' } });
      assert.equal(down.body.rating, 'down');
      assert.equal(down.body.comment, 'too vague');
      assert.equal(down.body.createdAt, up.body.createdAt);
      const shown = await t.api('GET', `/v1/conversations/${c.id}/messages?leafId=${a1.id}`, { token: u.accessToken });
      assert.deepEqual(shown.body.data[1].feedback, down.body);
      assert.equal(shown.body.data[0].feedback, null);
      assert.deepEqual((await t.api('GET', `/v1/conversations/${c.id}/messages/${a1.id}`, { token: u.accessToken })).body.feedback, down.body);

      const onUser = await t.api('PUT', `/v1/conversations/${c.id}/messages/${u1.id}/feedback`, { token: u.accessToken, body: { rating: 'up' } });
      assert.equal(onUser.status, 400);
      assert.equal(onUser.body.code, 'feedback_not_allowed');
      for (const body of [{}, { rating: 'meh' }, { rating: 'up', comment: 'c'.repeat(2001) }, { rating: 'up', extra: 1 }]) {
        assert.equal((await t.api('PUT', path, { token: u.accessToken, body })).status, 400, JSON.stringify(body).slice(0, 60));
      }
      assert.deepEqual((await t.api('GET', `/v1/conversations/${c.id}/messages/${a1.id}`, { token: u.accessToken })).body.feedback, down.body, 'unchanged by bad input');

      assert.equal((await t.api('DELETE', path, { token: u.accessToken })).status, 204);
      assert.equal((await t.api('GET', `/v1/conversations/${c.id}/messages/${a1.id}`, { token: u.accessToken })).body.feedback, null);
      assert.equal((await t.api('DELETE', path, { token: u.accessToken })).status, 204, 'idempotent');
    });

    test('the routes are in the OpenAPI document', async () => {
      const doc = await t.api('GET', '/openapi.json');
      assert.ok(doc.body.paths['/v1/conversations/{id}/messages'].get);
      assert.ok(doc.body.paths['/v1/conversations/{id}/messages/{messageId}/select'].post);
      assert.ok(doc.body.paths['/v1/conversations/{id}/messages/{messageId}/feedback'].put);
      assert.ok(doc.body.components.schemas.Message);
      assert.ok(doc.body.components.schemas.MessageBranch);
    });
  });
}
