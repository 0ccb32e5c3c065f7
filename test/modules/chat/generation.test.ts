import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { backends } from '../../support/app.ts';
import { uploadFile } from '../../support/files.ts';
import { createUser } from '../../support/factories.ts';
import { allSse, deltaText, readSse, type SseEvent } from '../../support/sse.ts';
import { answerRequests, chatAs, waitFor, sent, startChat, useChat, type ChatFixture } from './generation-fixture.ts';

for (const backend of backends()) {
  describe(`chat generation [${backend}]`, () => {
    const f = useChat(backend);

    test('JSON mode: stores the exchange and returns the finished answer with its usage', async () => {
      const u = await createUser(f.t);
      const chat = chatAs(f.t, u);
      const c = await chat.conversation();
      f.openai.script({ reply: 'Lisbon is lovely in May.', usage: { input: 12, output: 6 } });
      const res = await chat.send(c, { content: 'Where should I go?' });
      assert.equal(res.status, 201, res.text);
      const m = res.body;
      assert.equal(m.role, 'assistant');
      assert.equal(m.status, 'complete');
      assert.deepEqual(m.content, [{ type: 'text', text: 'Lisbon is lovely in May.' }]);
      assert.equal(m.provider, 'openai');
      assert.equal(m.model, 'gpt-4o-mini');
      assert.equal(m.tokensIn, 12);
      assert.equal(m.tokensOut, 6);
      assert.ok(m.costMicros > 0 && m.costMicros < 10, 'about 12 × 0.15 + 6 × 0.6 per million');
      assert.equal(m.cost, `0.00000${m.costMicros}`);
      assert.deepEqual(m.attempts, []);
      assert.equal(m.finishReason, 'stop');
      assert.ok(m.completedAt);

      const branch = await chat.branch(c);
      assert.deepEqual(branch.data.map((x: any) => [x.role, x.content[0].text, x.status]), [
        ['user', 'Where should I go?', 'complete'],
        ['assistant', 'Lisbon is lovely in May.', 'complete'],
      ]);
      assert.equal(branch.data[1].parentId, branch.data[0].id);
      assert.deepEqual(branch.data[1], m, 'the stored message is the one returned');
      const [req] = answerRequests(f.openai);
      assert.equal(req!.body.model, 'gpt-4o-mini');
      assert.equal(req!.body.stream, true);
      assert.deepEqual(sent(req!), [{ role: 'user', content: 'Where should I go?' }]);
    });

    test('SSE with raw fetch: message.created, deltas, message.completed, with offsets as ids', async () => {
      const u = await createUser(f.t);
      const chat = chatAs(f.t, u);
      const c = await chat.conversation();
      f.openai.script({ chunks: ['Hel', 'lo ', 'there', '!'], delayMs: 5 });
      const res = await chat.sendSse(c, { content: 'Hi' });
      assert.equal(res.status, 200);
      assert.match(res.headers.get('content-type')!, /^text\/event-stream/);
      assert.equal(res.headers.get('cache-control'), 'no-cache, no-transform');
      const events = await allSse(res);
      assert.deepEqual(events.map((e) => e.event), ['message.created', 'delta', 'delta', 'delta', 'delta', 'message.completed']);
      assert.deepEqual(events.map((e) => e.id), ['0', '1', '2', '3', '4', '5']);
      assert.equal(deltaText(events), 'Hello there!');
      const created = events[0]!.data;
      assert.equal(created.conversationId, c);
      const done = events.at(-1)!.data.message;
      assert.equal(done.id, created.assistantMessageId);
      assert.equal(done.parentId, created.userMessageId);
      assert.equal(done.content[0].text, 'Hello there!');
      assert.equal(done.status, 'complete');
      assert.deepEqual(await chat.message(c, done.id), done);
    });

    test('SSE with the eventsource client, posting through its fetch option', async () => {
      const { EventSource } = await import('eventsource');
      const u = await createUser(f.t);
      const chat = chatAs(f.t, u);
      const c = await chat.conversation();
      f.openai.script({ reply: 'One two three', delayMs: 5 });
      const got: Array<{ type: string; id: string; data: any }> = [];
      await new Promise<void>((resolve, reject) => {
        const es = new EventSource(`${f.t.url}/v1/conversations/${c}/messages`, {
          fetch: (url, init) =>
            fetch(url, { ...init, method: 'POST', headers: { ...init?.headers, authorization: `Bearer ${u.accessToken}`, 'content-type': 'application/json' }, body: JSON.stringify({ content: 'Count' }) }),
        });
        for (const type of ['message.created', 'delta', 'message.completed', 'error']) {
          es.addEventListener(type, (e) => {
            got.push({ type, id: e.lastEventId, data: JSON.parse(e.data) });
            // The stream is over: close before EventSource reconnects (and posts again).
            if (type === 'message.completed' || type === 'error') {
              es.close();
              resolve();
            }
          });
        }
        es.onerror = (e) => {
          es.close();
          reject(new Error(`eventsource error: ${e.message}`));
        };
      });
      assert.deepEqual(got.map((e) => e.type), ['message.created', 'delta', 'delta', 'delta', 'message.completed']);
      assert.equal(got.map((e) => (e.type === 'delta' ? e.data.text : '')).join(''), 'One two three');
      assert.equal(got.at(-1)!.id, '4');
      assert.equal(answerRequests(f.openai).length, 1);
    });

    test('the client going away mid-stream does not stop the answer: it completes and is stored', async () => {
      const u = await createUser(f.t);
      const chat = chatAs(f.t, u);
      const c = await chat.conversation();
      f.openai.script({ reply: 'a b c d e f g h i j', delayMs: 30 });
      const ctl = new AbortController();
      const res = await chat.sendSse(c, { content: 'Go' }, { signal: ctl.signal });
      let assistantId = '';
      let deltas = 0;
      try {
        for await (const e of readSse(res)) {
          if (e.event === 'message.created') assistantId = e.data.assistantMessageId;
          if (e.event === 'delta' && ++deltas === 2) ctl.abort();
        }
      } catch (err) {
        assert.equal((err as Error).name, 'AbortError');
      }
      assert.ok(assistantId);
      const m = await waitFor(async () => {
        const x = await chat.message(c, assistantId);
        return x.status === 'streaming' ? undefined : x;
      });
      assert.equal(m.status, 'complete');
      assert.equal(m.content[0].text, 'a b c d e f g h i j');
      assert.equal(answerRequests(f.openai)[0]!.aborted, false, 'the upstream call ran to its end');
    });

    test('deleting the conversation while its answer streams stops the provider call and ends the stream with conversation_deleted', async () => {
      const u = await createUser(f.t);
      const chat = chatAs(f.t, u);
      const c = await chat.conversation();
      f.openai.script({ reply: 'a b c d e f g h i j k l m n o p', delayMs: 100 });
      const res = await chat.sendSse(c, { content: 'Go' });
      const events: SseEvent[] = [];
      let deleted = false;
      for await (const e of readSse(res)) {
        events.push(e);
        if (e.event === 'delta' && !deleted) {
          deleted = true;
          assert.equal((await f.t.api('DELETE', `/v1/conversations/${c}`, { token: u.accessToken })).status, 204);
        }
      }
      const last = events.at(-1)!;
      assert.equal(last.event, 'error', `the stream ends with an error: ${JSON.stringify(events.map((e) => e.event))}`);
      assert.equal(last.data.code, 'conversation_deleted');
      assert.ok(deltaText(events).length < 'a b c d e f g h i j k l m n o p'.length, 'the answer stopped early');
      await waitFor(async () => (answerRequests(f.openai)[0]!.aborted ? true : undefined), 'the provider call stopped');
    });

    test('a question cannot go under an answer still being written: 409 answer_in_progress, nothing stored; once it ends it can', async () => {
      const u = await createUser(f.t);
      const chat = chatAs(f.t, u);
      const c = await chat.conversation();
      f.openai.script({ chunks: ['Half ', 'an answer'], holdAfter: 1 });
      const res = await chat.sendSse(c, { content: 'Go' });
      let ids: { userMessageId: string; assistantMessageId: string } | undefined;
      for await (const e of readSse(res)) {
        if (e.event === 'message.created') ids = e.data;
        if (e.event === 'delta') break;
      }
      assert.ok(ids);
      const calls = answerRequests(f.openai).length;
      const before = (await chat.branch(c)).data.map((m: any) => m.id);
      // Under the current leaf (the answer), named or not.
      for (const body of [{ content: 'And?' }, { content: 'And?', parentId: ids.assistantMessageId }]) {
        const refused = await chat.send(c, body);
        assert.equal(refused.status, 409, refused.text);
        assert.equal(refused.body.code, 'answer_in_progress');
      }
      assert.equal(answerRequests(f.openai).length, calls, 'no model is called');
      assert.deepEqual((await chat.branch(c)).data.map((m: any) => m.id), before, 'nothing is stored');

      // Stopped, it is an answer like any other.
      assert.equal((await chat.cancel(c, ids.assistantMessageId)).status, 200);
      await waitFor(async () => ((await chat.message(c, ids!.assistantMessageId)).status === 'cancelled' ? true : undefined), 'the answer is cancelled');
      f.openai.script({ reply: 'Whole.' });
      const after = await chat.send(c, { content: 'And?' });
      assert.equal(after.status, 201, after.text);
      assert.equal((await chat.message(c, after.body.parentId)).parentId, ids.assistantMessageId, 'the question goes under the stopped answer');
    });

    test("the project's active prompt is the system message; the model sees the branch history", async () => {
      const u = await createUser(f.t);
      const chat = chatAs(f.t, u);
      const project = await f.t.api('POST', '/v1/projects', { token: u.accessToken, body: { name: 'Pirate', systemPrompt: 'Talk like a pirate.' } });
      assert.equal(project.status, 201, project.text);
      const c = await chat.conversation({ title: 'Arr', projectId: project.body.id });
      f.openai.script({ reply: 'Ahoy!' }, { reply: 'Aye, 42.' });
      assert.equal((await chat.send(c, { content: 'Hello' })).status, 201);
      assert.equal((await chat.send(c, { content: 'The answer?' })).status, 201);
      const [first, second] = answerRequests(f.openai);
      assert.deepEqual(sent(first!), [
        { role: 'system', content: 'Talk like a pirate.' },
        { role: 'user', content: 'Hello' },
      ]);
      assert.deepEqual(sent(second!), [
        { role: 'system', content: 'Talk like a pirate.' },
        { role: 'user', content: 'Hello' },
        { role: 'assistant', content: 'Ahoy!' },
        { role: 'user', content: 'The answer?' },
      ]);
      // A new active prompt applies to the next answer.
      const prompt = await f.t.api('POST', `/v1/projects/${project.body.id}/prompts`, { token: u.accessToken, body: { name: 'Formal', content: 'Be formal.', activate: true } });
      assert.equal(prompt.status, 201, prompt.text);
      await chat.send(c, { content: 'Bye' });
      assert.deepEqual(sent(answerRequests(f.openai)[2]!)[0], { role: 'system', content: 'Be formal.' });
    });

    test('editing a message starts a sibling branch; the model sees only that branch', async () => {
      const u = await createUser(f.t);
      const chat = chatAs(f.t, u);
      const c = await chat.conversation();
      f.openai.script({ reply: 'A1' }, { reply: 'A2' }, { reply: 'A2 edited' });
      const a1 = (await chat.send(c, { content: 'Q1' })).body;
      const a2 = (await chat.send(c, { content: 'Q2' })).body;
      const edited = await chat.send(c, { content: 'Q2, better', parentId: a1.id });
      assert.equal(edited.status, 201, edited.text);
      assert.deepEqual(sent(answerRequests(f.openai)[2]!), [
        { role: 'user', content: 'Q1' },
        { role: 'assistant', content: 'A1' },
        { role: 'user', content: 'Q2, better' },
      ]);
      const branch = await chat.branch(c);
      assert.deepEqual(branch.data.map((m: any) => m.content[0].text), ['Q1', 'A1', 'Q2, better', 'A2 edited']);
      assert.equal(branch.leafId, edited.body.id);
      const newQ2 = branch.data[2];
      assert.equal(newQ2.parentId, a1.id);
      assert.deepEqual(newQ2.siblingIds, [a2.parentId, newQ2.id], 'the old and the edited question are siblings');
      assert.equal(newQ2.siblingIndex, 1);
      assert.equal((await chat.message(c, a2.id)).status, 'complete', 'the old branch is kept');
    });

    test('regenerating gives a sibling answer with the same parent and the same context', async () => {
      const u = await createUser(f.t);
      const chat = chatAs(f.t, u);
      const c = await chat.conversation();
      f.openai.script({ reply: 'A1' }, { reply: 'A2' }, { reply: 'A2 again' }, { reply: 'A2 thrice' });
      await chat.send(c, { content: 'Q1' });
      const a2 = (await chat.send(c, { content: 'Q2' })).body;
      const again = await chat.regenerate(c, a2.id);
      assert.equal(again.status, 201, again.text);
      assert.equal(again.body.parentId, a2.parentId);
      assert.deepEqual(again.body.siblingIds, [a2.id, again.body.id]);
      const [, second, third] = answerRequests(f.openai);
      assert.deepEqual(sent(third!), sent(second!), 'the same history as the first answer');
      assert.equal((await chat.branch(c)).leafId, again.body.id, 'the new answer is shown');
      // From the user message, with another model for this answer only.
      const thrice = await chat.regenerate(c, a2.parentId, { model: 'openai:gpt-4o' });
      assert.equal(thrice.status, 201, thrice.text);
      assert.equal(thrice.body.model, 'gpt-4o');
      assert.equal(answerRequests(f.openai)[3]!.body.model, 'gpt-4o');
      assert.deepEqual(thrice.body.siblingIds, [a2.id, again.body.id, thrice.body.id]);
    });

    test('a failing model falls back along the chain; the failed attempt is recorded', async () => {
      const u = await createUser(f.t);
      const chat = chatAs(f.t, u);
      const p = await f.t.api('POST', '/v1/projects', { token: u.accessToken, body: { name: 'P', model: 'openai:gpt-4o', fallbackModels: ['anthropic:claude-haiku-4-5'] } });
      const c = await chat.conversation({ title: 'T', projectId: p.body.id });
      f.openai.script({ status: 500 });
      f.anthropic.script({ reply: 'Claude here.' });
      const res = await chat.send(c, { content: 'Hi' });
      assert.equal(res.status, 201, res.text);
      assert.equal(res.body.provider, 'anthropic');
      assert.equal(res.body.model, 'claude-haiku-4-5');
      assert.equal(res.body.content[0].text, 'Claude here.');
      assert.equal(res.body.attempts.length, 1);
      assert.equal(res.body.attempts[0].provider, 'openai');
      assert.equal(res.body.attempts[0].model, 'gpt-4o');
      assert.equal(res.body.attempts[0].status, 500);
      assert.equal(answerRequests(f.openai)[0]!.body.model, 'gpt-4o', 'the project model first');
      assert.equal(answerRequests(f.anthropic).length, 1);
    });

    test('a provider failing mid-stream ends the SSE with an error; the message is failed with its partial text', async () => {
      const u = await createUser(f.t);
      const chat = chatAs(f.t, u);
      const c = await chat.conversation();
      f.openai.script({ reply: 'one two three four five', cutAfter: 2 });
      const events = await allSse(await chat.sendSse(c, { content: 'Count' }));
      assert.deepEqual(new Set(events.slice(1, -1).map((e) => e.event)), new Set(['delta']));
      assert.equal(deltaText(events), 'one two ');
      const error = events.at(-1)!;
      assert.equal(error.event, 'error');
      assert.equal(error.data.code, 'stream_interrupted');
      assert.equal(error.id, String(events.length - 1));
      const m = await chat.message(c, error.data.messageId);
      assert.equal(m.status, 'failed');
      assert.deepEqual(m.content, [{ type: 'text', text: 'one two ' }]);
      assert.equal(m.error.code, 'stream_interrupted');
      assert.deepEqual(m.attempts.map((a: any) => [a.provider, a.code]), [['openai', 'stream_interrupted']]);
      assert.equal(answerRequests(f.openai).length, 1, 'no retry after output started');

      // In JSON mode the same failure is a 502 problem naming the message.
      f.openai.script({ reply: 'one two three', cutAfter: 1 });
      const json = await chat.send(c, { content: 'Again' });
      assert.equal(json.status, 502);
      assert.equal(json.body.code, 'stream_interrupted');
      assert.equal((await chat.message(c, json.body.messageId)).content[0].text, 'one ');
    });

    test('when every provider fails before any output: all_providers_failed, every attempt recorded', async () => {
      const u = await createUser(f.t);
      const chat = chatAs(f.t, u);
      const p = await f.t.api('POST', '/v1/projects', { token: u.accessToken, body: { name: 'P', fallbackModels: ['anthropic:claude-haiku-4-5'] } });
      const c = await chat.conversation({ title: 'T', projectId: p.body.id });
      f.openai.script({ status: 429 });
      f.anthropic.script({ status: 500 });
      const res = await chat.send(c, { content: 'Hi' });
      assert.equal(res.status, 502);
      assert.equal(res.body.code, 'all_providers_failed');
      const m = await chat.message(c, res.body.messageId);
      assert.equal(m.status, 'failed');
      assert.deepEqual(m.content, []);
      assert.deepEqual(m.attempts.map((a: any) => [a.provider, a.status]), [['openai', 429], ['anthropic', 500]]);
    });

    test('a title is generated after the first exchange, without holding up the reply', async () => {
      const u = await createUser(f.t);
      const chat = chatAs(f.t, u);
      const c = await chat.conversation({});
      f.openai.script({ reply: 'Try Lisbon.' }, { reply: '"Trip to Lisbon."', delayMs: 100 });
      const res = await chat.send(c, { content: 'Where should I travel in May?' });
      assert.equal(res.status, 201);
      assert.equal((await f.t.api('GET', `/v1/conversations/${c}`, { token: u.accessToken })).body.title, null, 'the reply came first');
      await f.t.services.generation.idle();
      assert.equal((await f.t.api('GET', `/v1/conversations/${c}`, { token: u.accessToken })).body.title, 'Trip to Lisbon');
      const titleRequest = f.openai.requests.find((r) => !answerRequests(f.openai).includes(r))!;
      assert.match(titleRequest.body.messages[1].content, /Where should I travel in May\?[\s\S]*Try Lisbon\./);

      f.openai.script({ reply: 'More.' });
      await chat.send(c, { content: 'And then?' });
      await f.t.services.generation.idle();
      assert.equal(f.openai.requests.length, 3, 'no title for later exchanges');
    });

    test('a failed title generation is not surfaced and leaves no title', async () => {
      const u = await createUser(f.t);
      const chat = chatAs(f.t, u);
      const c = await chat.conversation({});
      f.openai.script({ reply: 'Fine.' }, { status: 400 });
      const res = await chat.send(c, { content: 'Hi' });
      assert.equal(res.status, 201);
      await f.t.services.generation.idle();
      assert.equal((await f.t.api('GET', `/v1/conversations/${c}`, { token: u.accessToken })).body.title, null);
    });

    test('bad requests write nothing: unknown model, unknown parent, empty or too long content', async () => {
      const u = await createUser(f.t);
      const chat = chatAs(f.t, u);
      const c = await chat.conversation();
      const fileId = (await uploadFile(f.t, u, 'notes.txt', 'notes')).id;
      const cases: Array<[Record<string, unknown>, number, string]> = [
        [{ content: 'Hi', model: 'nowhere:gpt-nope' }, 400, 'unknown_model'],
        [{ content: '\u200b\u2060 \u3164\ufeff' }, 400, 'message_empty'],
        [{ content: [{ type: 'text', text: 'Read' }, { type: 'file', fileId }, { type: 'file', fileId }] }, 400, 'duplicate_file'],
        [{ content: 'Hi', parentId: '01900000-0000-7000-8000-000000000000' }, 404, 'message_not_found'],
        [{ content: '   ' }, 400, 'message_empty'],
        [{ content: [{ type: 'text', text: ' \n ' }, { type: 'text', text: '' }] }, 400, 'message_empty'],
        [{ content: 'x'.repeat(100_001) }, 400, 'message_too_long'],
        [{ content: [{ type: 'text', text: 'x'.repeat(60_000) }, { type: 'text', text: 'y'.repeat(60_000) }] }, 400, 'message_too_long'],
        [{ content: [] }, 400, 'validation_failed'],
        [{ content: 'Hi', extra: 1 }, 400, 'validation_failed'],
      ];
      for (const [body, status, code] of cases) {
        const res = await chat.send(c, body);
        assert.equal(res.status, status, JSON.stringify(body));
        assert.equal(res.body.code, code);
      }
      assert.deepEqual((await chat.branch(c)).data, []);
      assert.equal(f.openai.requests.length, 0);
      const missing = await chat.send('01900000-0000-7000-8000-000000000000', { content: 'Hi' });
      assert.equal(missing.status, 404);
      assert.equal(missing.body.code, 'conversation_not_found');
    });

    test('API keys need the chat scope', async () => {
      const u = await createUser(f.t);
      const c = await chatAs(f.t, u).conversation();
      const key = async (scopes: string[]) => (await f.t.api('POST', '/v1/api-keys', { token: u.accessToken, body: { name: 'k', scopes } })).body.key;
      const chatKey = await key(['chat']);
      const readKey = await key(['profile:read']);
      const ok = await f.t.api('POST', `/v1/conversations/${c}/messages`, { token: chatKey, body: { content: 'Hi' } });
      assert.equal(ok.status, 201, ok.text);
      const refused = await f.t.api('POST', `/v1/conversations/${c}/messages`, { token: readKey, body: { content: 'Hi' } });
      assert.equal(refused.status, 403);
      assert.equal(refused.body.code, 'insufficient_scope');
    });
  });

  describe(`chat generation limits [${backend}]`, () => {
    let f: ChatFixture;
    before(async () => {
      f = await startChat(backend, { CHAT_MAX_MESSAGE_CHARS: '20', CHAT_MAX_STREAM_SECONDS: '1' });
    });
    after(() => f.close());

    test('a message over CHAT_MAX_MESSAGE_CHARS is refused before anything is written', async () => {
      const u = await createUser(f.t);
      const chat = chatAs(f.t, u);
      const c = await chat.conversation();
      const res = await chat.send(c, { content: 'x'.repeat(21) });
      assert.equal(res.status, 400);
      assert.equal(res.body.code, 'message_too_long');
      assert.deepEqual((await chat.branch(c)).data, []);
      assert.equal((await chat.send(c, { content: 'x'.repeat(20) })).status, 201);
    });

    test('an answer running past CHAT_MAX_STREAM_SECONDS is stopped: stream_timeout, partial text kept', async () => {
      const u = await createUser(f.t);
      const chat = chatAs(f.t, u);
      const c = await chat.conversation();
      f.openai.script({ reply: Array.from({ length: 40 }, (_, i) => `w${i}`).join(' '), delayMs: 100 });
      const events = await allSse(await chat.sendSse(c, { content: 'Long' }));
      const error = events.at(-1)!;
      assert.equal(error.event, 'error');
      assert.equal(error.data.code, 'stream_timeout');
      const m = await chat.message(c, error.data.messageId);
      assert.equal(m.status, 'failed');
      assert.equal(m.error.code, 'stream_timeout');
      assert.ok(m.content[0].text.startsWith('w0 w1 '), m.content[0]?.text);
      assert.equal(m.content[0].text, deltaText(events));
      await waitFor(async () => (answerRequests(f.openai).at(-1)!.aborted ? true : undefined), 'the upstream call was stopped');
    });
  });
}
