import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import { chatAs, useChat } from '../modules/chat/generation-fixture.ts';
import { backends } from '../support/app.ts';
import { createUser, type TestUser } from '../support/factories.ts';
import { allSse, deltaText } from '../support/sse.ts';

/**
 * U+0000 cannot be stored in PostgreSQL text or jsonb. Wherever a client can put
 * one (a JSON string or key, a path or query parameter), the answer is a 400
 * problem and nothing is stored; where a model puts one in its reply, the reply
 * is still stored, without it.
 */
for (const backend of backends()) {
  describe(`NUL characters [${backend}]`, () => {
    const f = useChat(backend);
    let u: TestUser;
    let conversationId: string;

    before(async () => {
      u = await createUser(f.t);
      conversationId = (await f.t.api('POST', '/v1/conversations', { token: u.accessToken, body: { title: 'kept' } })).body.id;
    });

    // The OpenAI-compatible routes answer in OpenAI's error format, the rest as problems.
    const refused: Array<{ name: string; method: string; path: () => string; raw?: string; where: string; openai?: true }> = [
      { name: 'a conversation title', method: 'POST', path: () => '/v1/conversations', raw: '{"title":"a\\u0000b"}', where: '/title' },
      { name: 'a renamed conversation', method: 'PATCH', path: () => `/v1/conversations/${conversationId}`, raw: '{"title":"\\u0000"}', where: '/title' },
      { name: 'a project name', method: 'POST', path: () => '/v1/projects', raw: '{"name":"p\\u0000"}', where: '/name' },
      { name: 'a message', method: 'POST', path: () => `/v1/conversations/${conversationId}/messages`, raw: '{"content":"hi\\u0000there"}', where: '/content' },
      { name: 'a nested value', method: 'PATCH', path: () => '/v1/users/me/preferences', raw: '{"extra":{"list":["ok","x\\u0000"]}}', where: '/extra/list/1' },
      { name: 'an object key', method: 'PATCH', path: () => '/v1/users/me/preferences', raw: '{"a\\u0000b":1}', where: '/a\u0000b' },
      { name: 'a profile name', method: 'PATCH', path: () => '/v1/users/me', raw: '{"name":"\\u0000"}', where: '/name' },
      { name: 'a gateway prompt', method: 'POST', path: () => '/v1/chat/completions', raw: '{"model":"openai:gpt-4o-mini","messages":[{"role":"user","content":"\\u0000"}]}', where: '/messages/0/content', openai: true },
      { name: 'a search query', method: 'GET', path: () => '/v1/search?q=a%00b', where: '/v1/search' },
      { name: 'a path parameter', method: 'GET', path: () => '/v1/models/openai:gpt%00', where: '/v1/models/openai:gpt%00', openai: true },
    ];
    for (const c of refused) {
      test(`${c.name} holding a NUL is a 400 problem`, async () => {
        const res = await f.t.api(c.method, c.path(), { token: u.accessToken, ...(c.raw === undefined ? {} : { raw: c.raw }) });
        assert.equal(res.status, 400, res.text);
        if (c.openai) {
          assert.equal(res.body.error.code, 'validation_failed');
          assert.equal(res.body.error.type, 'invalid_request_error');
          assert.ok(res.body.error.message.includes(`${c.where} contains a NUL`), res.body.error.message);
          return;
        }
        assert.equal(res.headers.get('content-type'), 'application/problem+json; charset=utf-8');
        assert.equal(res.body.code, 'validation_failed');
        assert.match(res.body.detail, /NUL/);
        assert.deepEqual(res.body.errors.map((e: { path: string }) => e.path), [c.where]);
      });
    }

    test('nothing was stored by the refused requests; an escaped backslash before u0000 is plain text', async () => {
      const listed = await f.t.api('GET', '/v1/conversations', { token: u.accessToken });
      assert.deepEqual(listed.body.data.map((c: { title: string }) => c.title), ['kept']);
      assert.equal((await f.t.api('GET', `/v1/conversations/${conversationId}/messages`, { token: u.accessToken })).body.data.length, 0);
      assert.equal((await f.t.api('GET', '/v1/projects', { token: u.accessToken })).body.data.length, 0);
      const literal = await f.t.api('POST', '/v1/conversations', { token: u.accessToken, raw: '{"title":"C:\\\\u0000"}' });
      assert.equal(literal.status, 201, literal.text);
      assert.equal(literal.body.title, 'C:\\u0000');
    });

    test('a model reply holding NULs is stored and streamed without them', async () => {
      f.openai.script({ chunks: ['Hel', 'lo\u0000 wor', '\u0000', 'ld'] });
      const res = await f.t.api('POST', `/v1/conversations/${conversationId}/messages`, { token: u.accessToken, body: { content: 'Say hello' } });
      assert.equal(res.status, 201, res.text);
      assert.equal(res.body.status, 'complete');
      assert.deepEqual(res.body.content, [{ type: 'text', text: 'Hello world' }]);
      f.openai.script({ chunks: ['\u0000A', 'gain'] });
      const streamed = await allSse(await chatAs(f.t, u).sendSse(conversationId, { content: 'Once more' }));
      assert.equal(deltaText(streamed), 'Again');
      assert.equal(streamed.at(-1)!.event, 'message.completed');
      const stored = await f.t.api('GET', `/v1/conversations/${conversationId}/messages`, { token: u.accessToken });
      assert.deepEqual(stored.body.data.filter((m: { role: string }) => m.role === 'assistant').map((m: { content: Array<{ text: string }> }) => m.content[0]!.text), ['Hello world', 'Again']);
    });
  });
}
