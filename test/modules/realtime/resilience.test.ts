import assert from 'node:assert/strict';
import type { Socket } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, test } from 'node:test';
import { backends, startApp, type TestApp } from '../../support/app.ts';
import { eventually } from '../../support/eventually.ts';
import { createUser } from '../../support/factories.ts';
import { connectAs, subscribe } from '../../support/ws.ts';

/** A gauge or counter of the instance, as /metrics reports it. */
async function metric(t: TestApp, name: string): Promise<number> {
  return (await t.deps.metrics.registry.getSingleMetric(name)!.get()).values[0]!.value;
}

const rawSocket = (ws: unknown) => (ws as { _socket: Socket })._socket;

for (const backend of backends()) {
  describe(`realtime: dead and slow clients [${backend}]`, () => {
    // Apart: a paused client cannot answer pings, so a short heartbeat would cut it before backpressure does.
    let beating: TestApp;
    let small: TestApp;
    before(async () => {
      [beating, small] = await Promise.all([startApp({ backend, env: { WS_HEARTBEAT_MS: '100' } }), startApp({ backend, env: { WS_MAX_BUFFERED_BYTES: '1024' } })]);
    });
    after(() => Promise.all([beating?.close(), small?.close()]));

    test('a client that does not answer pings is terminated; one that does stays', async () => {
      const u = await createUser(beating);
      const dead = await connectAs(beating, u.accessToken, { autoPong: false });
      const live = await connectAs(beating, u.accessToken);
      assert.equal((await dead.closed).code, 1006, 'terminated, no closing handshake');
      await sleep(300);
      live.send({ type: 'ping' });
      assert.deepEqual(await live.next(), { type: 'pong' });
      await live.close();
      await eventually(async () => assert.equal(await metric(beating, 'parley_ws_connections'), 0));
    });

    test('a client that stops reading is dropped once WS_MAX_BUFFERED_BYTES wait for it; the others of the user get every event', async () => {
      const t = small;
      const u = await createUser(t);
      const slow = await connectAs(t, u.accessToken);
      const fast = await connectAs(t, u.accessToken);
      for (const c of [slow, fast]) assert.equal((await subscribe(c, 'user')).type, 'subscribed');
      rawSocket(slow.ws).pause();
      const big = 'x'.repeat(16 * 1024);
      let sent = 0;
      let received = 0;
      // Batches until the server gives up on it: kernel buffers take a few MB first.
      while ((await metric(t, 'parley_ws_slow_consumers_dropped_total')) === 0 && sent < 4_000) {
        for (let i = 0; i < 8; i++) await t.deps.bus.publish('user.updated', { userId: u.id, fields: [String(sent++), big] });
        await eventually(() => {
          received += fast.frames.splice(0).length;
          assert.equal(received, sent);
        });
      }
      assert.equal(await metric(t, 'parley_ws_slow_consumers_dropped_total'), 1);
      await eventually(async () => assert.equal(await metric(t, 'parley_ws_connections'), 1), 3_000);
      assert.equal(fast.ws.readyState, fast.ws.OPEN);
      rawSocket(slow.ws).resume();
      const { code } = await slow.closed;
      assert.ok(code === 1013 || code === 1006, `closed as slow (1013) or cut (1006), got ${code}`);
      assert.ok(slow.frames.length < sent, 'the slow client did not get everything');
      await fast.close();
    });

    test("a client that sends but never reads is dropped too: the server's replies wait in the same buffer as events", async () => {
      const t = small;
      const u = await createUser(t);
      const flooding = await connectAs(t, u.accessToken);
      rawSocket(flooding.ws).pause();
      const before = await metric(t, 'parley_ws_slow_consumers_dropped_total');
      // Each frame is answered (an invalid_topic error naming it): replies were queued without any bound.
      const frame = JSON.stringify({ type: 'subscribe', topic: 'x'.repeat(190) });
      for (let batch = 0; batch < 2_000 && (await metric(t, 'parley_ws_slow_consumers_dropped_total')) === before; batch++) {
        for (let i = 0; i < 20; i++) flooding.ws.send(frame);
        await sleep(5);
      }
      assert.equal(await metric(t, 'parley_ws_slow_consumers_dropped_total'), before + 1);
      rawSocket(flooding.ws).resume();
      const { code } = await flooding.closed;
      assert.ok(code === 1013 || code === 1006, `closed as slow (1013) or cut (1006), got ${code}`);
    });
  });
}
