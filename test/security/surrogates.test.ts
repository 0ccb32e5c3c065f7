import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import { chatAs, useChat } from '../modules/chat/generation-fixture.ts';
import { backends } from '../support/app.ts';
import { createUser, type TestUser } from '../support/factories.ts';
import { allSse, deltaText } from '../support/sse.ts';

/**
 * A lone UTF-16 surrogate (`\ud800` escaped in JSON) is valid JSON but not
 * text PostgreSQL can hold in jsonb: it fails the query. Plain text columns
 * take it as U+FFFD (node-postgres encodes strings as UTF-8), so it is turned
 * into U+FFFD wherever it enters, the same for every column: in a request
 * body, in a model's reply, in an upstream's error message.
 */
for (const backend of backends()) {
  describe(`lone surrogates [${backend}]`, () => {
    const f = useChat(backend);
    let u: TestUser;
    let admin: TestUser;
    let conversationId: string;

    before(async () => {
      u = await createUser(f.t);
      admin = await createUser(f.t, { admin: true });
      conversationId = await chatAs(f.t, u).conversation({ title: 'kept' });
    });

    const branch = async () => (await f.t.api('GET', `/v1/conversations/${conversationId}/messages`, { token: u.accessToken })).body.data;

    test('a preference holding one is stored with U+FFFD; the other preferences are kept', async () => {
      // A user of its own: a defaultModel preference now picks the model of this user's answers.
      const u = await createUser(f.t);
      assert.equal((await f.t.api('PATCH', '/v1/users/me/preferences', { token: u.accessToken, body: { theme: 'dark' } })).status, 200);
      const res = await f.t.api('PATCH', '/v1/users/me/preferences', { token: u.accessToken, raw: '{"defaultModel":"openai:x\\ud800y"}' });
      assert.equal(res.status, 200, res.text);
      assert.equal(res.body.defaultModel, 'openai:x\uFFFDy');
      const read = await f.t.api('GET', '/v1/users/me/preferences', { token: u.accessToken });
      assert.equal(read.body.defaultModel, 'openai:x\uFFFDy');
      assert.equal(read.body.theme, 'dark');
    });

    test('a message holding one is stored with U+FFFD; a pair, however written, is kept', async () => {
      const res = await f.t.api('POST', `/v1/conversations/${conversationId}/messages`, { token: u.accessToken, raw: '{"content":"lone \\uDC00 low, lone \\ud83d high, pair \\ud83d\\ude00 \\uD83D\\uDE00"}' });
      assert.equal(res.status, 201, res.text);
      const [question] = await branch();
      assert.equal(question.content[0].text, 'lone \uFFFD low, lone \uFFFD high, pair 😀 😀');
    });

    test("an admin's ban reason holding one is stored with U+FFFD, in the ban and in the audit log", async () => {
      const victim = await createUser(f.t);
      const res = await f.t.api('POST', '/v1/admin/bans', { token: admin.accessToken, raw: `{"kind":"user","subject":"${victim.id}","seconds":60,"reason":"spam \\ud800"}` });
      assert.equal(res.status, 201, res.text);
      assert.equal(res.body.reason, 'spam \uFFFD');
      const audit = await f.t.api('GET', '/v1/admin/audit?limit=100', { token: admin.accessToken });
      assert.equal(audit.status, 200, audit.text);
      assert.ok(audit.text.includes('spam \uFFFD'), audit.text);
      assert.equal((await f.t.api('GET', '/v1/users/me', { token: victim.accessToken })).status, 403);
    });

    test("a model reply holding one is stored and streamed with U+FFFD; a pair split between two chunks is joined", async () => {
      f.openai.script({ chunks: ['lone \ud800 here, split \ud83d', '\ude00 joined, high at the end \ud83d'], delayMs: 20 });
      const res = await f.t.api('POST', `/v1/conversations/${conversationId}/messages`, { token: u.accessToken, body: { content: 'Reply' } });
      assert.equal(res.status, 201, res.text);
      assert.equal(res.body.status, 'complete', res.text);
      const expected = 'lone \uFFFD here, split 😀 joined, high at the end \uFFFD';
      assert.deepEqual(res.body.content, [{ type: 'text', text: expected }]);
      f.openai.script({ chunks: ['again \udfff', ' and \ud83d', '\ude00'], delayMs: 20 });
      const streamed = await allSse(await chatAs(f.t, u).sendSse(conversationId, { content: 'Once more' }));
      assert.equal(deltaText(streamed), 'again \uFFFD and 😀');
      assert.ok(streamed.every((e) => e.event !== 'delta' || e.data.text.isWellFormed()));
      assert.equal(streamed.at(-1)!.event, 'message.completed');
      const stored = (await branch()).filter((m: { role: string }) => m.role === 'assistant');
      assert.deepEqual(stored.map((m: { content: Array<{ text: string }> }) => m.content[0]!.text).slice(-2), [expected, 'again \uFFFD and 😀']);
    });

    test('a first exchange cut for its title request is cut between characters: the provider never gets half a pair', async () => {
      const c = await chatAs(f.t, u).conversation({});
      const before = f.openai.requests.length;
      f.openai.script({ reply: 'ok' }, { reply: 'Smileys' });
      await chatAs(f.t, u).send(c, { content: `a${'😀'.repeat(1_500)}` });
      await f.t.services.generation.idle();
      const sent = f.openai.requests.slice(before).map((r) => JSON.stringify(r.body));
      assert.equal(sent.length, 2, 'the answer and the title');
      for (const body of sent) assert.doesNotMatch(body, /\\ud83d(?!\\ude00)/i, 'no lone high surrogate');
      assert.ok(f.openai.requests.slice(before).every((r) => JSON.stringify(r.body.messages).isWellFormed()));
    });

    test("an upstream error whose message holds one (here, cut inside a pair) is stored as the message's failure", async () => {
      f.openai.script({ status: 400, errorMessage: `${'a'.repeat(299)}😀 and more` });
      const res = await f.t.api('POST', `/v1/conversations/${conversationId}/messages`, { token: u.accessToken, body: { content: 'Fail' } });
      const last = (await branch()).at(-1);
      assert.equal(last.role, 'assistant', res.text);
      assert.equal(last.status, 'failed', res.text);
      assert.equal(last.error.code, 'provider_rejected');
      const [attempt] = last.attempts;
      assert.ok(attempt.error.endsWith(`${'a'.repeat(299)}\uFFFD`), attempt.error);
    });
  });
}
