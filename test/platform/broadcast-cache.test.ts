import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, test, type TestContext } from 'node:test';
import { memoryBroadcast, redisBroadcast, type Broadcast } from '../../src/platform/broadcast/broadcast.ts';
import { createBroadcastCache } from '../../src/platform/broadcast/cache.ts';
import { openRedis } from '../../src/platform/redis/redis.ts';
import { eventually } from '../support/eventually.ts';

/** A value the test hands out when it chooses, and how many loads asked for one. */
function source<V>(initial: V) {
  let value = initial;
  const pending: Array<() => void> = [];
  const s = {
    loads: 0,
    held: false,
    set: (v: V) => void (value = v),
    /** Loads wait until released (to catch one in flight). */
    hold: () => void (s.held = true),
    release: () => {
      s.held = false;
      for (const go of pending.splice(0)) go();
    },
    load: async (_key: string): Promise<V> => {
      s.loads++;
      const read = value;
      if (s.held) await new Promise<void>((resolve) => pending.push(resolve));
      return read;
    },
  };
  return s;
}

/** Two processes' broadcasts: one in memory (one process), or two Redis connections. */
const sides: Array<{ name: string; skip?: string | false; make(t: TestContext): Promise<[Broadcast, Broadcast]> }> = [
  {
    name: 'memory',
    async make(t) {
      const b = memoryBroadcast();
      t.after(() => b.close());
      return [b, b];
    },
  },
  {
    name: 'redis',
    skip: !process.env.REDIS_URL && 'REDIS_URL not set',
    async make(t) {
      const prefix = `parley:test:${randomBytes(6).toString('hex')}:`;
      const [r1, r2] = [openRedis(process.env.REDIS_URL!), openRedis(process.env.REDIS_URL!)];
      const pair: [Broadcast, Broadcast] = [redisBroadcast(r1, prefix), redisBroadcast(r2, prefix)];
      t.after(async () => {
        await Promise.all(pair.map((b) => b.close()));
        await Promise.all([r1.quit(), r2.quit()]);
      });
      return pair;
    },
  },
];

for (const side of sides) {
  describe(`broadcast cache [${side.name}]`, { skip: side.skip }, () => {
    const cacheOn = (broadcast: Broadcast, load: (key: string) => Promise<unknown>, opts: { ttlMs?: number; maxEntries?: number; expiresAt?: (v: any) => number | undefined } = {}) =>
      createBroadcastCache<any>({ broadcast, topic: 'test.cache', load, ttlMs: opts.ttlMs ?? 60_000, maxEntries: opts.maxEntries ?? 100, expiresAt: opts.expiresAt });

    test('a value is loaded once and served from the process after; concurrent gets share the one load', async (t) => {
      const [b] = await side.make(t);
      const s = source({ theme: 'dark' });
      const cache = cacheOn(b, s.load);
      await b.settled();
      const got = await Promise.all([cache.get('u1'), cache.get('u1'), cache.get('u1')]);
      assert.deepEqual(got, [{ theme: 'dark' }, { theme: 'dark' }, { theme: 'dark' }]);
      s.set({ theme: 'light' });
      assert.deepEqual(await cache.get('u1'), { theme: 'dark' });
      assert.equal(s.loads, 1);
      assert.deepEqual(await cache.get('u2'), { theme: 'light' });
      assert.equal(s.loads, 2);
    });

    test('forgetting a key in one process drops it in every process', async (t) => {
      const [b1, b2] = await side.make(t);
      const s = source('old');
      const [one, two] = [cacheOn(b1, s.load), cacheOn(b2, s.load)];
      await Promise.all([b1.settled(), b2.settled()]);
      assert.deepEqual([await one.get('u1'), await two.get('u1'), await two.get('u2')], ['old', 'old', 'old']);
      s.set('new');
      await one.forget('u1');
      assert.equal(await one.get('u1'), 'new');
      await eventually(async () => assert.equal(await two.get('u1'), 'new'));
      // Only that key.
      assert.equal(await two.get('u2'), 'old');
    });

    test('a load in flight when its key is forgotten is neither kept nor shared: it may have read the old value', async (t) => {
      const [b] = await side.make(t);
      const s = source('old');
      const cache = cacheOn(b, s.load);
      await b.settled();
      s.hold();
      const early = cache.get('u1');
      s.set('new');
      await cache.forget('u1');
      // A get meanwhile does not wait for the old load.
      const meanwhile = cache.get('u1');
      s.release();
      assert.deepEqual([await early, await meanwhile], ['old', 'new']);
      assert.equal(s.loads, 2);
      // And the old load, finished after the forget, left nothing behind.
      s.hold();
      const stale = cache.get('u2');
      await cache.forget('u2');
      s.release();
      assert.equal(await stale, 'new');
      s.set('newer');
      assert.equal(await cache.get('u2'), 'newer');
    });

    test('nothing found is not kept; an entry lives its TTL, or less when the value says it lapses sooner', async (t) => {
      const [b] = await side.make(t);
      const missing = source<string | undefined>(undefined);
      const cache = cacheOn(b, missing.load);
      assert.equal(await cache.get('u1'), undefined);
      missing.set('now here');
      assert.equal(await cache.get('u1'), 'now here');

      const short = source('v1');
      const brief = cacheOn(b, short.load, { ttlMs: 50 });
      assert.equal(await brief.get('u1'), 'v1');
      short.set('v2');
      await eventually(async () => assert.equal(await brief.get('u1'), 'v2'));

      const lapsing = source({ until: Date.now() + 50 });
      const bounded = cacheOn(b, lapsing.load, { expiresAt: (v) => v.until });
      await bounded.get('u1');
      lapsing.set({ until: Date.now() + 60_000 });
      await eventually(async () => assert.ok((await bounded.get('u1')).until > Date.now() + 1_000));
      assert.equal(lapsing.loads, 2);
    });

    test('it holds at most maxEntries; the oldest goes first', async (t) => {
      const [b] = await side.make(t);
      const s = source('v');
      const cache = cacheOn(b, s.load, { maxEntries: 2 });
      for (const key of ['a', 'b', 'c']) await cache.get(key);
      assert.equal(s.loads, 3);
      await cache.get('c');
      await cache.get('b');
      assert.equal(s.loads, 3);
      await cache.get('a');
      assert.equal(s.loads, 4);
    });

    test('a load that fails is not kept, and the next get tries again', async (t) => {
      const [b] = await side.make(t);
      let fail = true;
      let loads = 0;
      const cache = cacheOn(b, async () => {
        loads++;
        if (fail) throw new Error('database down');
        return 'ok';
      });
      await assert.rejects(cache.get('u1'), /database down/);
      fail = false;
      assert.equal(await cache.get('u1'), 'ok');
      assert.equal(loads, 2);
    });
  });
}
