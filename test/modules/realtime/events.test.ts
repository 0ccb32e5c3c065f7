import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { backends, startApp, type TestApp } from '../../support/app.ts';
import { createUser, type TestUser } from '../../support/factories.ts';
import { connectAs, connectWs, subscribe, type Frame, type WsClient } from '../../support/ws.ts';

const created = (userId: string, conversationId: string) => ({ userId, conversationId, userMessageId: randomUUID(), assistantMessageId: randomUUID(), model: 'openai:gpt-4o-mini' });
const isEvent = (type: string) => (f: Frame) => f.type === 'event' && f.event.type === type;

/** Publishes an event for `u` on topic `user` and waits for it: everything relayed before it has arrived. */
async function settle(t: TestApp, u: TestUser, c: WsClient) {
  const marker = `marker-${randomUUID()}`;
  await t.deps.bus.publish('user.updated', { userId: u.id, fields: [marker] });
  await c.next((f) => f.type === 'event' && f.event.payload.fields?.[0] === marker);
}

for (const backend of backends()) {
  describe(`realtime: topics and events [${backend}]`, () => {
    let t: TestApp;
    before(async () => {
      t = await startApp({ backend, env: { WS_MAX_SUBSCRIPTIONS: '4', WS_MAX_MESSAGE_BYTES: '1024' } });
    });
    after(() => t.close());

    const conversation = async (u: TestUser) => (await t.services.conversations.create(u.id, { title: 'ws' })).id;

    test('a subscribed conversation gets its message events as event frames', async () => {
      const u = await createUser(t);
      const conv = await conversation(u);
      const c = await connectAs(t, u.accessToken);
      assert.deepEqual(await subscribe(c, `conversation:${conv.toUpperCase()}`), { type: 'subscribed', topic: `conversation:${conv}` });
      const payload = created(u.id, conv);
      const id = await t.deps.bus.publish('message.created', payload);
      const f = await c.next();
      assert.equal(f.type, 'event');
      assert.equal(f.topic, `conversation:${conv}`);
      assert.deepEqual(Object.keys(f.event).sort(), ['id', 'occurredAt', 'payload', 'type']);
      assert.equal(f.event.id, id);
      assert.equal(f.event.type, 'message.created');
      assert.deepEqual(f.event.payload, payload);
      assert.ok(!Number.isNaN(Date.parse(f.event.occurredAt)));
      // Another conversation of the same user is not on this topic.
      await t.deps.bus.publish('message.stream.started', { userId: u.id, conversationId: await conversation(u), messageId: randomUUID(), provider: null, model: null });
      c.send({ type: 'subscribe', topic: 'user' });
      await c.next((x) => x.type === 'subscribed');
      await settle(t, u, c);
      assert.deepEqual(c.frames, []);
      await c.close();
    });

    test('conversations, jobs and user topics; an event reaches a socket once, on its most specific topic; unsubscribe stops it', async () => {
      const u = await createUser(t);
      const conv = await conversation(u);
      const c = await connectAs(t, u.accessToken);
      for (const topic of ['conversations', `conversation:${conv}`, 'jobs', 'user']) assert.equal((await subscribe(c, topic)).type, 'subscribed');
      await t.deps.bus.publish('message.created', created(u.id, conv));
      await t.deps.bus.publish('message.created', created(u.id, randomUUID()));
      await t.deps.bus.publish('job.progress', { userId: u.id, jobId: randomUUID(), queue: 'export', state: 'active', progress: 40 });
      await settle(t, u, c);
      assert.deepEqual(
        c.frames.splice(0).map((f) => [f.topic, f.event.type]),
        [
          [`conversation:${conv}`, 'message.created'],
          ['conversations', 'message.created'],
          ['jobs', 'job.progress'],
        ],
      );
      c.send({ type: 'unsubscribe', topic: 'conversations' });
      assert.deepEqual(await c.next(), { type: 'unsubscribed', topic: 'conversations' });
      await t.deps.bus.publish('message.created', created(u.id, randomUUID()));
      await settle(t, u, c);
      assert.deepEqual(c.frames, []);
      assert.equal((await subscribe(c, 'user')).type, 'subscribed', 'subscribing twice is a no-op');
      assert.equal((await subscribe(c, 'notifications')).type, 'subscribed');
      assert.deepEqual(await subscribe(c, 'conversations'), { type: 'error', code: 'too_many_subscriptions', message: 'At most 4 topics per socket', topic: 'conversations' });
      await c.close();
    });

    test('job progress of an own job; another user can subscribe to neither that job nor the conversation', async () => {
      const a = await createUser(t);
      const b = await createUser(t);
      const conv = await conversation(a);
      const job = await t.deps.queue.enqueue('realtime-test', { n: 1 }, { userId: a.id });
      const sa = await connectAs(t, a.accessToken);
      const sb = await connectAs(t, b.accessToken);
      assert.deepEqual(await subscribe(sa, `job:${job.id}`), { type: 'subscribed', topic: `job:${job.id}` });
      assert.deepEqual(await subscribe(sb, `job:${job.id}`), { type: 'error', code: 'not_found', message: 'Job not found', topic: `job:${job.id}` });
      assert.deepEqual(await subscribe(sb, `conversation:${conv}`), { type: 'error', code: 'not_found', message: 'Conversation not found', topic: `conversation:${conv}` });
      assert.equal((await subscribe(sb, `conversation:${randomUUID()}`)).code, 'not_found', 'a missing one looks the same');
      assert.equal((await subscribe(sb, `job:${randomUUID()}`)).code, 'not_found');
      for (const topic of [`user:${a.id}`, `conversation:nope`, 'job:', 'everything', `conversations:${a.id}`]) {
        assert.equal((await subscribe(sb, topic)).code, 'invalid_topic', topic);
      }
      // B listens to everything of its own; A's events never reach it.
      for (const topic of ['conversations', 'jobs', 'user', 'notifications']) assert.equal((await subscribe(sb, topic)).type, 'subscribed');
      await t.deps.bus.publish('job.progress', { userId: a.id, jobId: job.id, queue: 'realtime-test', state: 'active', progress: { step: 2 } });
      await t.deps.bus.publish('message.created', created(a.id, conv));
      await t.deps.bus.publish('user.updated', { userId: a.id, fields: ['name'] });
      const got = await sa.next();
      assert.equal(got.topic, `job:${job.id}`);
      assert.deepEqual(got.event.payload.progress, { step: 2 });
      await settle(t, b, sb);
      assert.deepEqual(sb.frames, [], 'B received nothing of A');
      await Promise.all([sa.close(), sb.close()]);
    });

    test('malformed JSON, unknown types and invalid fields get error frames; ten of them close with 4400', async () => {
      const u = await createUser(t);
      const c = await connectAs(t, u.accessToken);
      c.send('{not json');
      assert.deepEqual(await c.next(), { type: 'error', code: 'malformed_message', message: 'Not valid JSON' });
      c.send({ type: 'launch' });
      assert.deepEqual(await c.next(), { type: 'error', code: 'unknown_type', message: 'Unknown message type "launch"' });
      c.send({ type: 'subscribe' });
      assert.equal((await c.next()).code, 'invalid_message');
      c.send([1, 2]);
      assert.equal((await c.next()).code, 'invalid_message');
      c.ws.send(Buffer.from('{"type":"ping"}'), { binary: true });
      assert.equal((await c.next()).code, 'malformed_message');
      c.send({ type: 'ping' });
      assert.deepEqual(await c.next(), { type: 'pong' }, 'the socket still works');
      for (let i = 0; i < 5; i++) c.send('nope');
      assert.deepEqual(await c.closed, { code: 4400, reason: 'too many malformed messages' });
    });

    test('a message larger than WS_MAX_MESSAGE_BYTES closes with 1009', async () => {
      const u = await createUser(t);
      const c = await connectAs(t, u.accessToken);
      c.send({ type: 'subscribe', topic: 'x'.repeat(2000) });
      assert.equal((await c.closed).code, 1009);
    });
  });

  describe(`realtime: shutdown [${backend}]`, () => {
    test('app.close() closes open sockets with 1001', async () => {
      const t = await startApp({ backend });
      const u = await createUser(t);
      const c = await connectAs(t, u.accessToken);
      const pending = await connectWs(t);
      await t.close();
      assert.deepEqual(await c.closed, { code: 1001, reason: 'server shutting down' });
      assert.equal((await pending.closed).code, 1001);
    });
  });
}
