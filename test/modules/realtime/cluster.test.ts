import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { startApp, type TestApp } from '../../support/app.ts';
import { eventually } from '../../support/eventually.ts';
import { createUser } from '../../support/factories.ts';
import { connectAs, connectWs, subscribe, type Frame, type WsClient } from '../../support/ws.ts';

const skip = process.env.DATABASE_URL && process.env.REDIS_URL ? false : 'needs PostgreSQL and Redis (DATABASE_URL and REDIS_URL)';

describe('realtime: two instances sharing PostgreSQL and Redis', { skip }, () => {
  let a: TestApp;
  let b: TestApp;
  // The other tests here hold at most two sockets per user at once.
  const env = { WS_MAX_CONNECTIONS_PER_USER: '2' };
  before(async () => {
    a = await startApp({ backend: 'postgres', env });
    b = await startApp({ sharedWith: a, env });
  });
  after(async () => {
    await b?.close();
    await a?.close();
  });

  /** Opens one more socket of the user: how it was closed, or the `ready` frame if it was let in (and then closed). */
  async function oneMore(t: TestApp, token: string): Promise<{ code: number; reason: string } | Frame> {
    const c = await connectWs(t);
    c.send({ type: 'auth', token });
    return c.next((f) => f.type === 'ready').then(
      async (f) => (await c.close(), f),
      () => c.closed,
    );
  }

  const marked = (marker: string) => (f: Frame) => f.type === 'event' && f.event.payload.fields?.[0] === marker;
  async function publishMarker(t: TestApp, userId: string, ...sockets: WsClient[]) {
    const marker = randomUUID();
    await t.deps.bus.publish('user.updated', { userId, fields: [marker] });
    return Promise.all(sockets.map((s) => s.next(marked(marker))));
  }

  test('an event published on A reaches a socket on B, and one on A, each exactly once', async () => {
    const u = await createUser(a);
    const conv = (await a.services.conversations.create(u.id, { title: 'x' })).id;
    const onB = await connectAs(b, u.accessToken);
    const onA = await connectAs(a, u.accessToken);
    for (const s of [onA, onB]) {
      assert.equal((await subscribe(s, `conversation:${conv}`)).type, 'subscribed');
      assert.equal((await subscribe(s, 'user')).type, 'subscribed');
    }
    const id = await a.deps.bus.publish('message.created', { userId: u.id, conversationId: conv, userMessageId: randomUUID(), assistantMessageId: randomUUID(), model: null });
    for (const s of [onA, onB]) assert.equal((await s.next()).event.id, id);
    // Both instances relay (one consumer group): whichever takes an event, each socket gets it once.
    for (let i = 0; i < 5; i++) await publishMarker(a, u.id, onA, onB);
    await publishMarker(b, u.id, onA, onB);
    assert.deepEqual([...onA.frames, ...onB.frames], []);
    await Promise.all([onA.close(), onB.close()]);
  });

  test('B stops listening to a user once their last socket closes there, and listens again for a new one', async () => {
    const u = await createUser(a);
    const first = await connectAs(b, u.accessToken);
    assert.equal((await subscribe(first, 'user')).type, 'subscribed');
    await publishMarker(a, u.id, first);
    await first.close();
    const second = await connectAs(b, u.accessToken);
    assert.equal((await subscribe(second, 'user')).type, 'subscribed');
    await publishMarker(a, u.id, second);
    await second.close();
  });

  test('a subscription on B is authorized against the shared database; another user is refused', async () => {
    const owner = await createUser(a);
    const other = await createUser(b);
    const conv = (await a.services.conversations.create(owner.id, { title: 'x' })).id;
    const job = await a.deps.queue.enqueue('realtime-test', {}, { userId: owner.id });
    const s = await connectAs(b, owner.accessToken);
    assert.equal((await subscribe(s, `conversation:${conv}`)).type, 'subscribed');
    assert.equal((await subscribe(s, `job:${job.id}`)).type, 'subscribed');
    const o = await connectAs(b, other.accessToken);
    assert.equal((await subscribe(o, `conversation:${conv}`)).code, 'not_found');
    assert.equal((await subscribe(o, `job:${job.id}`)).code, 'not_found');
    await Promise.all([s.close(), o.close()]);
  });

  test('WS_MAX_CONNECTIONS_PER_USER holds across instances: one socket on each, a third on either closes with 4429; a closed one frees its slot', async () => {
    const u = await createUser(a);
    const onA = await connectAs(a, u.accessToken);
    const onB = await connectAs(b, u.accessToken);
    for (const t of [a, b]) assert.deepEqual(await oneMore(t, u.accessToken), { code: 4429, reason: 'too many connections for this user' });
    // Another user is not affected.
    const other = await createUser(b);
    await (await connectAs(a, other.accessToken)).close();
    await onA.close();
    // A's release and B's next take travel on different Redis connections: B sees the slot free soon, not at once.
    const again = await eventually(() => connectAs(b, u.accessToken));
    assert.deepEqual(await oneMore(a, u.accessToken), { code: 4429, reason: 'too many connections for this user' });
    await Promise.all([onB.close(), again.close()]);
  });
});
