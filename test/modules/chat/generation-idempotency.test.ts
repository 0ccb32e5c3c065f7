import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { describe, test } from 'node:test';
import { eq } from 'drizzle-orm';
import { messages } from '../../../src/modules/chat/schema.ts';
import { backends } from '../../support/app.ts';
import { createUser } from '../../support/factories.ts';
import { allSse, readSse } from '../../support/sse.ts';
import { answerRequests, chatAs, useChat } from './generation-fixture.ts';

for (const backend of backends()) {
  describe(`chat idempotency [${backend}]`, () => {
    const f = useChat(backend);

    async function setup() {
      const u = await createUser(f.t);
      const chat = chatAs(f.t, u);
      const c = await chat.conversation();
      return { u, chat, c, key: { 'idempotency-key': randomUUID() } };
    }
    /** Messages stored in the conversation, on every branch. */
    const messageCount = async (c: string) => (await f.t.deps.db.select({ id: messages.id }).from(messages).where(eq(messages.conversationId, c))).length;

    test('a retried POST returns the same answer and calls the model once', async () => {
      const { chat, c, key } = await setup();
      f.openai.script({ reply: 'Only once.' });
      const first = await chat.send(c, { content: 'Hi' }, key);
      const retry = await chat.send(c, { content: 'Hi' }, key);
      assert.equal(first.status, 201);
      assert.equal(retry.status, 201);
      assert.deepEqual(retry.body, first.body);
      assert.equal(answerRequests(f.openai).length, 1);
      assert.equal(await messageCount(c), 2, 'one question, one answer');
    });

    test('a retried SSE POST re-attaches to the same stream from the start, even mid-generation', async () => {
      const { chat, c, key } = await setup();
      f.openai.script({ reply: 'a b c d e f', delayMs: 30 });
      const ctl = new AbortController();
      const firstEvents = [];
      for await (const e of readSse(await chat.sendSse(c, { content: 'Hi' }, { headers: key, signal: ctl.signal }))) {
        firstEvents.push(e);
        if (e.event === 'delta') break;
      }
      ctl.abort();
      const retried = await allSse(await chat.sendSse(c, { content: 'Hi' }, { headers: key }));
      assert.deepEqual(retried.slice(0, firstEvents.length), firstEvents, 'the same events, ids and all');
      assert.equal(retried.at(-1)!.event, 'message.completed');
      assert.equal(retried.at(-1)!.data.message.content[0].text, 'a b c d e f');
      // Once done, a JSON retry of the same request gets the finished message.
      const json = await chat.send(c, { content: 'Hi' }, key);
      assert.equal(json.status, 201);
      assert.deepEqual(json.body, retried.at(-1)!.data.message);
      assert.equal(answerRequests(f.openai).length, 1);
    });

    test('concurrent duplicates make one answer', async () => {
      const { chat, c, key } = await setup();
      f.openai.script({ reply: 'Just one.', delayMs: 10 });
      const results = await Promise.all(Array.from({ length: 5 }, () => chat.send(c, { content: 'Hi' }, key)));
      assert.deepEqual(results.map((r) => r.status), [201, 201, 201, 201, 201]);
      assert.equal(new Set(results.map((r) => r.body.id)).size, 1);
      assert.equal(answerRequests(f.openai).length, 1);
      assert.equal(await messageCount(c), 2);
    });

    test('the same key for a different request is refused and writes nothing', async () => {
      const { u, chat, c, key } = await setup();
      f.openai.script({ reply: 'First.' });
      const first = await chat.send(c, { content: 'Hi' }, key);
      assert.equal(first.status, 201);
      const other = await chatAs(f.t, u).conversation();
      const attempts = [
        () => chat.send(c, { content: 'Something else' }, key),
        () => chat.send(c, { content: 'Hi', model: 'openai:gpt-4o' }, key),
        () => chat.send(other, { content: 'Hi' }, key),
        () => chat.regenerate(c, first.body.id, undefined, key),
      ];
      for (const attempt of attempts) {
        const res = await attempt();
        assert.equal(res.status, 422, res.text);
        assert.equal(res.body.code, 'idempotency_key_reused');
      }
      assert.equal(await messageCount(c), 2);
      assert.equal(answerRequests(f.openai).length, 1);
    });

    test('keys belong to their user', async () => {
      const a = await setup();
      const b = await setup();
      f.openai.script({ reply: 'For A.' }, { reply: 'For B.' });
      const ra = await a.chat.send(a.c, { content: 'Hi' }, a.key);
      const rb = await b.chat.send(b.c, { content: 'Hi' }, a.key);
      assert.equal(rb.status, 201);
      assert.notEqual(rb.body.id, ra.body.id);
      assert.equal(rb.body.content[0].text, 'For B.');
    });

    test('a request refused before any work frees its key; a failed answer replays as the same failure', async () => {
      const { chat, c, key } = await setup();
      const refused = await chat.send(c, { content: 'Hi', model: 'nowhere:x' }, key);
      assert.equal(refused.status, 400);
      f.openai.script({ reply: 'one two', cutAfter: 1 });
      const failed = await chat.send(c, { content: 'Hi' }, key);
      assert.equal(failed.status, 502, 'the key was free for a corrected request');
      const replay = await chat.send(c, { content: 'Hi' }, key);
      assert.equal(replay.status, 502);
      assert.equal(replay.body.code, failed.body.code);
      assert.equal(replay.body.messageId, failed.body.messageId);
      assert.equal(answerRequests(f.openai).length, 1);
    });

    test('regenerate takes an Idempotency-Key too', async () => {
      const { chat, c, key } = await setup();
      f.openai.script({ reply: 'First.' }, { reply: 'Second.' });
      const first = await chat.send(c, { content: 'Hi' });
      const again = await chat.regenerate(c, first.body.id, {}, key);
      const retry = await chat.regenerate(c, first.body.id, {}, key);
      assert.equal(again.status, 201);
      assert.deepEqual(retry.body, again.body);
      assert.equal(answerRequests(f.openai).length, 2);
    });

    test('a malformed key is a 400', async () => {
      const { chat, c } = await setup();
      for (const k of ['x'.repeat(256), 'has space']) {
        const res = await chat.send(c, { content: 'Hi' }, { 'idempotency-key': k });
        assert.equal(res.status, 400, k);
        assert.equal(res.body.code, 'validation_failed');
      }
    });
  });
}
