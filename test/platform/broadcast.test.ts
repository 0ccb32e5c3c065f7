import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, test, type TestContext } from 'node:test';
import { memoryBroadcast, redisBroadcast, type Broadcast } from '../../src/platform/broadcast/broadcast.ts';
import { openRedis, type Redis } from '../../src/platform/redis/redis.ts';
import { eventually } from '../support/eventually.ts';

/** Two handles on one cluster: the same fan-out in memory; on Redis, two over separate connections ("instances"). */
const sides: Array<{ name: string; skip?: string | false; make(t: TestContext, prefix?: string): [Broadcast, Broadcast] }> = [
  {
    name: 'memory',
    make(t) {
      const f = memoryBroadcast();
      t.after(() => f.close());
      return [f, f];
    },
  },
  {
    name: 'redis',
    skip: !process.env.REDIS_URL && 'REDIS_URL not set',
    make(t, prefix = `parley:test:${randomBytes(6).toString('hex')}:`) {
      const [r1, r2]: Redis[] = [openRedis(process.env.REDIS_URL!), openRedis(process.env.REDIS_URL!)];
      const pair: [Broadcast, Broadcast] = [redisBroadcast(r1, prefix), redisBroadcast(r2, prefix)];
      t.after(async () => {
        await Promise.all(pair.map((f) => f.close()));
        await Promise.all([r1.quit(), r2.quit()]);
      });
      return pair;
    },
  },
];

function inbox() {
  const got: string[] = [];
  return { got, listener: (m: string) => void got.push(m) };
}

for (const side of sides) {
  describe(`broadcast [${side.name}]`, { skip: side.skip }, () => {
    test('a message published on one instance reaches the listeners on every instance, the publisher’s included', async (t) => {
      const [a, b] = side.make(t);
      const [onA, onB] = [inbox(), inbox()];
      await a.subscribe('user:1', onA.listener);
      await b.subscribe('user:1', onB.listener);
      await a.publish('user:1', 'one');
      await b.publish('user:1', 'two');
      await eventually(() => {
        assert.deepEqual(onA.got, ['one', 'two']);
        assert.deepEqual(onB.got, ['one', 'two']);
      });
    });

    test('several listeners of one topic each get every message, in order', async (t) => {
      const [a, b] = side.make(t);
      const listeners = [inbox(), inbox(), inbox()];
      for (const l of listeners) await b.subscribe('conv:9', l.listener);
      const sent = Array.from({ length: 20 }, (_, i) => JSON.stringify({ n: i, text: `ü ${i}` }));
      for (const m of sent) await a.publish('conv:9', m);
      await eventually(() => {
        for (const l of listeners) assert.deepEqual(l.got, sent);
      });
    });

    test('topics are isolated from each other', async (t) => {
      const [a, b] = side.make(t);
      const [one, two, prefixOfOne] = [inbox(), inbox(), inbox()];
      await b.subscribe('user:1', one.listener);
      await b.subscribe('user:2', two.listener);
      await b.subscribe('user:', prefixOfOne.listener);
      await a.publish('user:1', 'for one');
      await a.publish('user:2', 'for two');
      await a.publish('user:*', 'no pattern');
      await a.publish('user:', 'last');
      await eventually(() => assert.deepEqual(prefixOfOne.got, ['last']));
      assert.deepEqual(one.got, ['for one']);
      assert.deepEqual(two.got, ['for two']);
    });

    test('unsubscribe stops delivery to that listener only; the last one leaving the topic, then coming back, works', async (t) => {
      const [a, b] = side.make(t);
      const [stays, leaves, marker] = [inbox(), inbox(), inbox()];
      const stopStays = await b.subscribe('topic', stays.listener);
      const stopLeaves = await b.subscribe('topic', leaves.listener);
      await b.subscribe('marker', marker.listener);
      await a.publish('topic', 'both');
      await eventually(() => assert.deepEqual(leaves.got, ['both']));
      await stopLeaves();
      await stopLeaves();
      await a.publish('topic', 'one');
      await eventually(() => assert.deepEqual(stays.got, ['both', 'one']));
      assert.deepEqual(leaves.got, ['both']);

      await stopStays();
      await a.publish('topic', 'nobody');
      // Messages from one publisher arrive in order: once the marker is in, "nobody" would have been too.
      await a.publish('marker', 'm1');
      await eventually(() => assert.deepEqual(marker.got, ['m1']));
      assert.deepEqual(stays.got, ['both', 'one']);

      // Unsubscribing and subscribing again at once (the commands race on the connection).
      const again = inbox();
      const stopAgainFirst = await b.subscribe('topic', inbox().listener);
      const pending = stopAgainFirst();
      await b.subscribe('topic', again.listener);
      await pending;
      await a.publish('topic', 'back');
      await eventually(() => assert.deepEqual(again.got, ['back']));
      assert.deepEqual(leaves.got, ['both']);
      assert.deepEqual(stays.got, ['both', 'one']);
    });

    test('a listener that throws does not keep the message from the others, nor break the publisher', async (t) => {
      const [a, b] = side.make(t);
      const [before, after] = [inbox(), inbox()];
      await b.subscribe('t', before.listener);
      await b.subscribe('t', () => {
        throw new Error('listener bug');
      });
      await b.subscribe('t', after.listener);
      await a.publish('t', 'x');
      await a.publish('t', 'y');
      await eventually(() => {
        assert.deepEqual(before.got, ['x', 'y']);
        assert.deepEqual(after.got, ['x', 'y']);
      });
    });

    test('close() stops every listener of that instance', async (t) => {
      const [a, b] = side.make(t);
      const [onA, onB] = [inbox(), inbox()];
      await a.subscribe('t', onA.listener);
      await b.subscribe('t', onB.listener);
      await b.close();
      await a.publish('t', 'after close');
      await eventually(() => assert.deepEqual(onA.got, side.name === 'memory' ? [] : ['after close']));
      assert.deepEqual(onB.got, []);
    });

    if (side.name === 'redis') {
      test('deployments with different prefixes do not hear each other', async (t) => {
        const [a] = side.make(t, `parley:test:${randomBytes(6).toString('hex')}:`);
        const [, other] = side.make(t, `parley:test:${randomBytes(6).toString('hex')}:`);
        const [mine, theirs] = [inbox(), inbox()];
        await a.subscribe('t', mine.listener);
        await other.subscribe('t', theirs.listener);
        await a.publish('t', 'hello');
        await other.publish('t', 'marker');
        await eventually(() => {
          assert.deepEqual(theirs.got, ['marker']);
          assert.deepEqual(mine.got, ['hello']);
        });
      });
    }
  });
}
