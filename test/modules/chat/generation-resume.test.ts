import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { backends, startApp } from '../../support/app.ts';
import { createUser } from '../../support/factories.ts';
import { allSse, deltaText, readSse, type SseEvent } from '../../support/sse.ts';
import { answerRequests, chatAs, clusterSkip, waitFor, startChat, useChat, type ChatFixture } from './generation-fixture.ts';

const REPLY = 'alpha beta gamma delta epsilon zeta eta theta';

/** Reads an event stream until `stopAfter` deltas arrived, then hangs up; returns what was read. */
async function readSome(res: Response, ctl: AbortController, stopAfter: number): Promise<SseEvent[]> {
  const got: SseEvent[] = [];
  try {
    for await (const e of readSse(res)) {
      got.push(e);
      if (got.filter((x) => x.event === 'delta').length === stopAfter) ctl.abort();
    }
  } catch (err) {
    if ((err as Error).name !== 'AbortError') throw err;
  }
  return got;
}

for (const backend of backends()) {
  describe(`chat streams: resume and cancel [${backend}]`, () => {
    const f = useChat(backend);

    async function finished() {
      const u = await createUser(f.t);
      const chat = chatAs(f.t, u);
      const c = await chat.conversation();
      // Paced, so each word is its own delta (chunks read together go on as one).
      f.openai.script({ reply: 'one two three', delayMs: 20 });
      const events = await allSse(await chat.sendSse(c, { content: 'Hi' }));
      return { chat, c, events, id: events[0]!.data.assistantMessageId as string };
    }

    test('a finished stream replays from ?offset= or after Last-Event-ID', async () => {
      const { chat, c, events, id } = await finished();
      assert.equal(events.length, 5);
      const fromOffset = await allSse(await chat.stream(c, id, { query: '?offset=2' }));
      assert.deepEqual(fromOffset, events.slice(2));
      const afterLast = await allSse(await chat.stream(c, id, { headers: { 'last-event-id': '2' } }));
      assert.deepEqual(afterLast, events.slice(3));
      const both = await allSse(await chat.stream(c, id, { query: '?offset=1', headers: { 'last-event-id': '3' } }));
      assert.deepEqual(both, events.slice(1), 'the query wins');
      // Only a decimal id resumes: an empty or blank header, or a number JavaScript would read otherwise, starts over.
      for (const odd of ['', ' ', '0x1', '1e2']) {
        assert.deepEqual(await allSse(await chat.stream(c, id, { headers: { 'last-event-id': odd } })), events, `Last-Event-ID ${JSON.stringify(odd)}`);
      }
      assert.deepEqual(await allSse(await chat.stream(c, id)), events, 'from the start by default');
      // Past the end (the client has it all, as an EventSource reconnecting after the last event): 204, which tells it to stop.
      for (const past of [{ query: '?offset=5' }, { query: '?offset=99' }, { headers: { 'last-event-id': '4' } }]) {
        const res = await chat.stream(c, id, past);
        assert.equal(res.status, 204, JSON.stringify(past));
        assert.equal(await res.text(), '');
      }
      const last = await allSse(await chat.stream(c, id, { headers: { 'last-event-id': '3' } }));
      assert.deepEqual(last, events.slice(4), 'the last event is still there to resume to');
      const bad = await chat.stream(c, id, { query: '?offset=-1' });
      assert.equal(bad.status, 400);
    });

    test('a client that dropped off resumes a live stream with Last-Event-ID and misses nothing', async () => {
      const u = await createUser(f.t);
      const chat = chatAs(f.t, u);
      const c = await chat.conversation();
      f.openai.script({ reply: REPLY, delayMs: 25 });
      const ctl = new AbortController();
      const first = await readSome(await chat.sendSse(c, { content: 'Go' }, { signal: ctl.signal }), ctl, 2);
      const id = first[0]!.data.assistantMessageId;
      const rest = await allSse(await chat.stream(c, id, { headers: { 'last-event-id': first.at(-1)!.id! } }));
      assert.equal(rest[0]!.id, String(Number(first.at(-1)!.id) + 1));
      assert.equal(deltaText([...first, ...rest]), REPLY);
      assert.equal(rest.at(-1)!.event, 'message.completed');
    });

    test('the eventsource client reconnects by itself with Last-Event-ID after the connection drops', async () => {
      const { EventSource } = await import('eventsource');
      const u = await createUser(f.t);
      const chat = chatAs(f.t, u);
      const c = await chat.conversation();
      f.openai.script({ reply: REPLY, delayMs: 40 });
      const ctl = new AbortController();
      const created = (await readSse(await chat.sendSse(c, { content: 'Go' }, { signal: ctl.signal })).next()).value!.data;
      ctl.abort();
      const lastEventIds: Array<string | null> = [];
      const texts: string[] = [];
      let dropped = false;
      let lastSeenBeforeDrop = '';
      await new Promise<void>((resolve, reject) => {
        const es = new EventSource(`${f.t.url}/v1/conversations/${c}/messages/${created.assistantMessageId}/stream`, {
          fetch: (url, init) => {
            const headers = new Headers(init?.headers as Record<string, string>);
            lastEventIds.push(headers.get('last-event-id'));
            headers.set('authorization', `Bearer ${u.accessToken}`);
            return fetch(url, { ...init, headers });
          },
        });
        es.addEventListener('delta', (e) => {
          texts.push(JSON.parse(e.data).text);
          // A delta already read in the same chunk as the second one may still arrive after the drop was asked for.
          if (lastEventIds.length === 1) lastSeenBeforeDrop = e.lastEventId;
          if (texts.length === 2 && !dropped) {
            dropped = true;
            f.t.app.server.closeAllConnections();
          }
        });
        es.addEventListener('message.completed', () => {
          es.close();
          resolve();
        });
        es.addEventListener('error', (e) => {
          if (!dropped) {
            es.close();
            reject(new Error(`eventsource: ${(e as { message?: string }).message}`));
          }
        });
      });
      assert.equal(lastEventIds.length, 2, 'one reconnect');
      assert.equal(lastEventIds[0], null);
      assert.ok(Number(lastSeenBeforeDrop) >= 2);
      assert.equal(lastEventIds[1], lastSeenBeforeDrop, 'resumed after the last delta it got');
      assert.equal(texts.join(''), REPLY);
    });

    test('cancel stops the answer: status cancelled, the text so far kept, the upstream call stopped', async () => {
      const u = await createUser(f.t);
      const chat = chatAs(f.t, u);
      const c = await chat.conversation();
      f.openai.script({ reply: REPLY, delayMs: 40 });
      const res = await chat.sendSse(c, { content: 'Go' });
      const events: SseEvent[] = [];
      let cancelled: Promise<any> | undefined;
      for await (const e of readSse(res)) {
        events.push(e);
        if (e.event === 'delta' && !cancelled) cancelled = chat.cancel(c, events[0]!.data.assistantMessageId);
      }
      const response = await cancelled!;
      assert.equal(response.status, 200, response.text);
      assert.equal(response.body.status, 'cancelled');
      assert.equal(response.body.finishReason, 'cancelled');
      const last = events.at(-1)!;
      assert.equal(last.event, 'message.completed');
      assert.equal(last.data.message.status, 'cancelled');
      const text = deltaText(events);
      assert.ok(text.length > 0 && REPLY.startsWith(text) && text !== REPLY, text);
      assert.deepEqual(response.body.content, [{ type: 'text', text }]);
      assert.equal(response.body.provider, 'openai');
      await waitFor(async () => (answerRequests(f.openai)[0]!.aborted ? true : undefined), 'upstream aborted');
      const again = await chat.cancel(c, response.body.id);
      assert.equal(again.status, 200);
      assert.deepEqual(again.body, response.body, 'cancelling a finished answer changes nothing');
      const userMessage = await chat.cancel(c, response.body.parentId);
      assert.equal(userMessage.status, 400);
      assert.equal(userMessage.body.code, 'not_an_answer');
    });

    test('cancelling an answer nobody is generating (its instance died) settles it as cancelled', async () => {
      const u = await createUser(f.t);
      const chat = chatAs(f.t, u);
      const c = await chat.conversation();
      const question = await f.t.services.messages.appendUserMessage(u.id, c, { content: 'Orphan?' });
      const orphan = await f.t.services.messages.createAssistantPlaceholder(c, { parentId: question.id });
      const stream = await allSse(await chat.stream(c, orphan.id));
      assert.deepEqual(stream.map((e) => [e.event, e.data.code]), [['error', 'stream_unavailable']]);
      const res = await chat.cancel(c, orphan.id);
      assert.equal(res.status, 200, res.text);
      assert.equal(res.body.status, 'cancelled');
      const after = await allSse(await chat.stream(c, orphan.id));
      assert.equal(after.at(-1)!.event, 'message.completed');
      assert.equal(after.at(-1)!.data.message.status, 'cancelled');
    });

    test('the worker fails answers left streaming by an instance that died', async () => {
      const u = await createUser(f.t);
      const chat = chatAs(f.t, u);
      const c = await chat.conversation();
      const question = await f.t.services.messages.appendUserMessage(u.id, c, { content: 'Anyone?' });
      const orphan = await f.t.services.messages.createAssistantPlaceholder(c, { parentId: question.id });
      const repo = f.t.services.messages;
      assert.equal(await repo.failAbandoned(new Date(Date.now() - 60_000), new Date(Date.now() - 60_000)), 0, 'too recent to be abandoned');
      assert.ok((await repo.failAbandoned(new Date(Date.now() + 1000), new Date(Date.now() - 60_000))) >= 1);
      const m = await chat.message(c, orphan.id);
      assert.equal(m.status, 'failed');
      assert.equal(m.error.code, 'interrupted');
      const stream = await allSse(await chat.stream(c, orphan.id));
      assert.deepEqual(stream.map((e) => [e.event, e.data.code]), [['error', 'interrupted']]);
    });

    describe('across instances', { skip: clusterSkip(backend) }, () => {
      test('a second instance resumes a stream the first is generating', async () => {
        const t2 = await f.second();
        const u = await createUser(f.t);
        const chat = chatAs(f.t, u);
        const c = await chat.conversation();
        f.openai.script({ reply: REPLY, delayMs: 30 });
        const ctl = new AbortController();
        const first = await readSome(await chat.sendSse(c, { content: 'Go' }, { signal: ctl.signal }), ctl, 2);
        const id = first[0]!.data.assistantMessageId;
        const rest = await allSse(await chat.stream(c, id, { app: t2, headers: { 'last-event-id': first.at(-1)!.id! } }));
        assert.equal(deltaText([...first, ...rest]), REPLY);
        assert.equal(rest.at(-1)!.event, 'message.completed');
        assert.deepEqual(rest.at(-1)!.data.message, await chat.message(c, id, t2));
      });

      test('a cancel sent to the second instance stops the generation running on the first', async () => {
        const t2 = await f.second();
        const u = await createUser(f.t);
        const chat = chatAs(f.t, u);
        const c = await chat.conversation();
        f.openai.script({ reply: REPLY, delayMs: 40 });
        const events: SseEvent[] = [];
        let cancelled: Promise<any> | undefined;
        for await (const e of readSse(await chat.sendSse(c, { content: 'Go' }))) {
          events.push(e);
          if (e.event === 'delta' && !cancelled) cancelled = chat.cancel(c, events[0]!.data.assistantMessageId, t2);
        }
        const res = await cancelled!;
        assert.equal(res.status, 200, res.text);
        assert.equal(res.body.status, 'cancelled');
        assert.equal(events.at(-1)!.data.message.status, 'cancelled');
        assert.equal(res.body.content[0].text, deltaText(events));
        await waitFor(async () => (answerRequests(f.openai)[0]!.aborted ? true : undefined), 'upstream aborted');
      });

      test('an instance shutting down fails its generations; followers elsewhere see the error', async () => {
        const t3 = await startApp({ sharedWith: f.t, env: f.env });
        const u = await createUser(f.t);
        const chat = chatAs(f.t, u);
        const c = await chat.conversation();
        f.openai.script({ reply: REPLY, delayMs: 50 });
        const ctl = new AbortController();
        const first = await readSome(await chat.sendSse(c, { content: 'Go' }, { app: t3, signal: ctl.signal }), ctl, 1);
        const id = first[0]!.data.assistantMessageId;
        const follower = allSse(await chat.stream(c, id));
        await t3.close();
        const events = await follower;
        assert.equal(events.at(-1)!.event, 'error');
        assert.equal(events.at(-1)!.data.code, 'server_shutdown');
        const m = await chat.message(c, id);
        assert.equal(m.status, 'failed');
        assert.equal(m.content[0].text, deltaText(events));
      });
    });
  });

  describe(`chat streams: expired buffers [${backend}]`, () => {
    let f: ChatFixture;
    before(async () => {
      f = await startChat(backend, { CHAT_STREAM_RETENTION_SECONDS: '1' });
    });
    after(() => f.close());

    test('once the events have expired, a finished answer streams as its final event from the database', async () => {
      const u = await createUser(f.t);
      const chat = chatAs(f.t, u);
      const c = await chat.conversation();
      f.openai.script({ reply: 'Done.' }, { reply: 'one two', cutAfter: 1 });
      const ok = await chat.send(c, { content: 'Hi' });
      const failed = await chat.send(c, { content: 'Again' });
      assert.equal(failed.status, 502);
      await new Promise((r) => setTimeout(r, 1500));
      const replay = await allSse(await chat.stream(c, ok.body.id, { headers: { 'last-event-id': '1' } }));
      assert.deepEqual(replay, [{ id: '999999999999999', event: 'message.completed', data: { message: await chat.message(c, ok.body.id) } }]);
      // Resumed after it (an EventSource reconnects when the stream closes): 204, so it stops, instead of the final event again every second.
      const after = await chat.stream(c, ok.body.id, { headers: { 'last-event-id': '999999999999999' } });
      assert.equal(after.status, 204);
      const failure = await allSse(await chat.stream(c, failed.body.messageId));
      assert.deepEqual(failure.map((e) => [e.event, e.data.code, e.data.messageId]), [['error', 'stream_interrupted', failed.body.messageId]]);
    });
  });
}
