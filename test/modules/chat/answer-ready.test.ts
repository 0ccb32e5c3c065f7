import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { backends, type TestApp } from '../../support/app.ts';
import { createUser, type TestUser } from '../../support/factories.ts';
import { allSse, readSse } from '../../support/sse.ts';
import { connectAs } from '../../support/ws.ts';
import { answerRequests, chatAs, clusterSkip, useChat, waitFor } from './generation-fixture.ts';

const REPLY = 'alpha beta gamma delta epsilon zeta eta theta';

/** Reads an event stream until its first delta, then hangs up; returns the answer's message id. */
async function leaveAfterFirstDelta(res: Response, ctl: AbortController): Promise<string> {
  assert.equal(res.status, 200);
  let id: string | undefined;
  try {
    for await (const e of readSse(res)) {
      if (e.event === 'message.created') id = e.data.assistantMessageId;
      if (e.event === 'delta') ctl.abort();
    }
  } catch (err) {
    if ((err as Error).name !== 'AbortError') throw err;
  }
  assert.ok(id, 'message.created came first');
  return id;
}

const answerNotices = async (t: TestApp, u: TestUser) => {
  const res = await t.api('GET', '/v1/notifications', { token: u.accessToken });
  assert.equal(res.status, 200, res.text);
  return res.body.data.filter((n: { category: string }) => n.category === 'answer.ready');
};

for (const backend of backends()) {
  describe(`chat: answer.ready notifications [${backend}]`, () => {
    const f = useChat(backend);

    async function user() {
      const u = await createUser(f.t);
      const chat = chatAs(f.t, u);
      return { u, chat, c: await chat.conversation() };
    }

    /** Waits until every answer of this instance ended and its notice (if any) was sent. */
    const settled = (t: TestApp = f.t) => t.services.generation.idle();

    test('a streamed answer whose client hung up mid-stream, with no socket open: one notification, linking the conversation', async () => {
      const { u, chat, c } = await user();
      f.openai.script({ reply: REPLY, delayMs: 30 });
      const ctl = new AbortController();
      const id = await leaveAfterFirstDelta(await chat.sendSse(c, { content: 'Go' }, { signal: ctl.signal }), ctl);
      await settled();
      assert.equal((await chat.message(c, id)).status, 'complete', 'the answer was generated to the end');
      const notices = await answerNotices(f.t, u);
      assert.equal(notices.length, 1);
      assert.equal(notices[0].title, 'Your answer is ready');
      assert.equal(notices[0].link, `/conversations/${c}`);
      assert.deepEqual(notices[0].data, { conversationId: c, messageId: id });
      assert.equal(notices[0].channels.inApp.status, 'sent');
      assert.equal(notices[0].channels.email.status === 'queued' || notices[0].channels.email.status === 'sent', true, 'email is on by default');
    });

    test('the same with a WebSocket open for that user: no notification', async () => {
      const { u, chat, c } = await user();
      const socket = await connectAs(f.t, u.accessToken);
      f.openai.script({ reply: REPLY, delayMs: 30 });
      const ctl = new AbortController();
      const id = await leaveAfterFirstDelta(await chat.sendSse(c, { content: 'Go' }, { signal: ctl.signal }), ctl);
      await settled();
      assert.equal((await chat.message(c, id)).status, 'complete');
      assert.deepEqual(await answerNotices(f.t, u), []);
      await socket.close();
    });

    test('a stream read to its end: no notification; nor a JSON answer that was delivered', async () => {
      const { u, chat, c } = await user();
      f.openai.script({ reply: REPLY, delayMs: 5 });
      const events = await allSse(await chat.sendSse(c, { content: 'Go' }));
      assert.equal(events.at(-1)!.event, 'message.completed');
      f.openai.script({ reply: REPLY, delayMs: 5 });
      const json = await chat.send(c, { content: 'Again' });
      assert.equal(json.status, 201, json.text);
      await settled();
      assert.deepEqual(await answerNotices(f.t, u), []);
    });

    test('a client that hung up and resumed through /stream to the end: no notification', async () => {
      const { u, chat, c } = await user();
      f.openai.script({ reply: REPLY, delayMs: 40 });
      const ctl = new AbortController();
      const id = await leaveAfterFirstDelta(await chat.sendSse(c, { content: 'Go' }, { signal: ctl.signal }), ctl);
      const rest = await allSse(await chat.stream(c, id));
      assert.equal(rest.at(-1)!.event, 'message.completed');
      await settled();
      assert.deepEqual(await answerNotices(f.t, u), []);
    });

    test('a JSON request whose client went away before the answer: one notification; a failed answer: none', async () => {
      const { u, chat, c } = await user();
      f.openai.script({ reply: REPLY, delayMs: 40 });
      const ctl = new AbortController();
      const sent = fetch(`${f.t.url}/v1/conversations/${c}/messages`, {
        method: 'POST',
        headers: { authorization: `Bearer ${u.accessToken}`, 'content-type': 'application/json' },
        body: JSON.stringify({ content: 'Go' }),
        signal: ctl.signal,
      }).catch((err: Error) => err);
      await waitFor(async () => (answerRequests(f.openai).length ? true : undefined), 'the upstream call');
      ctl.abort();
      assert.equal(((await sent) as Error).name, 'AbortError');
      await settled();
      assert.equal((await answerNotices(f.t, u)).length, 1);

      f.openai.script({ status: 500 });
      const ctl2 = new AbortController();
      const res = await chat.sendSse(c, { content: 'Fail' }, { signal: ctl2.signal });
      ctl2.abort();
      await res.body?.cancel().catch(() => {});
      await settled();
      assert.equal((await answerNotices(f.t, u)).length, 1, 'only successful answers are announced');
    });

    test('two instances sharing Redis: a socket on A keeps an answer finished on B from notifying', { skip: clusterSkip(backend) }, async () => {
      const b = await f.second();
      const { u, chat, c } = await user();
      const socket = await connectAs(f.t, u.accessToken);
      assert.equal(await b.services.realtime.connected(u.id), true, "B sees A's socket");
      f.openai.script({ reply: REPLY, delayMs: 30 });
      const ctl = new AbortController();
      const id = await leaveAfterFirstDelta(await chat.sendSse(c, { content: 'Go' }, { signal: ctl.signal, app: b }), ctl);
      await settled(b);
      assert.equal((await chat.message(c, id)).status, 'complete');
      assert.deepEqual(await answerNotices(f.t, u), []);

      // Without the socket, the same on B notifies.
      await socket.close();
      await waitFor(async () => ((await b.services.realtime.connected(u.id)) ? undefined : true), 'presence gone');
      f.openai.script({ reply: REPLY, delayMs: 30 });
      const ctl2 = new AbortController();
      await leaveAfterFirstDelta(await chat.sendSse(c, { content: 'Again' }, { signal: ctl2.signal, app: b }), ctl2);
      await settled(b);
      assert.equal((await answerNotices(f.t, u)).length, 1);
    });

    test('two instances: a client resuming on A an answer generated on B, read to the end: no notification', { skip: clusterSkip(backend) }, async () => {
      const b = await f.second();
      const { u, chat, c } = await user();
      f.openai.script({ reply: REPLY, delayMs: 40 });
      const ctl = new AbortController();
      const id = await leaveAfterFirstDelta(await chat.sendSse(c, { content: 'Go' }, { signal: ctl.signal, app: b }), ctl);
      const rest = await allSse(await chat.stream(c, id));
      assert.equal(rest.at(-1)!.event, 'message.completed');
      await settled(b);
      assert.deepEqual(await answerNotices(f.t, u), []);
    });
  });
}
