import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, describe, test } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { uuidv7 } from 'uuidv7';
import { memoryStreamBuffer } from '../../src/platform/streams/memory-stream-buffer.ts';
import { redisStreamBuffer } from '../../src/platform/streams/redis-stream-buffer.ts';
import { StreamEnded, type StreamBuffer, type StreamBufferOptions, type StreamEntry } from '../../src/platform/streams/stream-buffer.ts';
import { openRedis, type Redis } from '../../src/platform/redis/redis.ts';
import { eventually } from '../support/eventually.ts';

const defaults: StreamBufferOptions = { retentionSeconds: 60, maxLiveSeconds: 600 };
const buffers: StreamBuffer[] = [];
const connections: Redis[] = [];
after(async () => {
  for (const b of buffers) await b.close();
  for (const c of connections) await c.quit();
});

/** Two handles on one cluster: the same object in memory, two connections (two "instances") on Redis. */
const sides: Array<{ name: string; make(opts?: StreamBufferOptions): [StreamBuffer, StreamBuffer]; skip?: string | false }> = [
  {
    name: 'memory',
    make: (opts = defaults) => {
      const b = memoryStreamBuffer(opts);
      buffers.push(b);
      return [b, b];
    },
  },
  {
    name: 'redis',
    skip: !process.env.REDIS_URL && 'REDIS_URL not set',
    make: (opts = defaults) => {
      const prefix = `parley:test:${randomBytes(6).toString('hex')}:`;
      const [r1, r2] = [openRedis(process.env.REDIS_URL!), openRedis(process.env.REDIS_URL!)];
      const pair: [StreamBuffer, StreamBuffer] = [redisStreamBuffer(r1, prefix, opts), redisStreamBuffer(r2, prefix, opts)];
      connections.push(r1, r2);
      buffers.push(...pair);
      return pair;
    },
  },
];

async function collect<E>(it: AsyncIterable<StreamEntry<E>>): Promise<Array<StreamEntry<E>>> {
  const out: Array<StreamEntry<E>> = [];
  for await (const e of it) out.push(e);
  return out;
}

for (const side of sides) {
  describe(`stream buffer [${side.name}]`, { skip: side.skip }, () => {
    test('append returns offsets; read replays from any offset', async () => {
      const [buf] = side.make();
      const id = uuidv7();
      for (let i = 0; i < 5; i++) assert.equal(await buf.append(id, { n: i, nested: { text: `t${i}` } }), i);
      await buf.end(id);
      const all = await collect(buf.read(id));
      assert.deepEqual(all, [0, 1, 2, 3, 4].map((n) => ({ offset: n, event: { n, nested: { text: `t${n}` } } })));
      assert.deepEqual((await collect(buf.read(id, 3))).map((e) => e.offset), [3, 4]);
      assert.deepEqual(await collect(buf.read(id, 5)), [], 'from the end: nothing, and it returns');
      assert.deepEqual(await collect(buf.read(id, 99)), []);
    });

    test('a reader follows live appends until the end, on another instance too', async () => {
      const [a, b] = side.make();
      const id = uuidv7();
      await a.append(id, 'first');
      const local = collect(a.read<string>(id));
      const remote = collect(b.read<string>(id, 1));
      await delay(50);
      for (const e of ['second', 'third']) {
        await a.append(id, e);
        await delay(20);
      }
      await a.end(id);
      assert.deepEqual((await local).map((e) => e.event), ['first', 'second', 'third']);
      assert.deepEqual(await remote, [
        { offset: 1, event: 'second' },
        { offset: 2, event: 'third' },
      ]);
    });

    test('a writer on another instance: readers start before the first event of a live stream', async () => {
      const [a, b] = side.make();
      const id = uuidv7();
      await b.append(id, { type: 'created' });
      const readers = [collect(a.read(id)), collect(a.read(id)), collect(b.read(id))];
      const burst = Array.from({ length: 700 }, (_, i) => ({ type: 'delta', i }));
      for (const e of burst) await b.append(id, e);
      await b.end(id);
      for (const r of await Promise.all(readers)) {
        assert.equal(r.length, 701);
        assert.deepEqual(r.map((e) => e.offset), [...Array(701).keys()]);
      }
    });

    test('end is final: state, idempotent end, no append after it', async () => {
      const [a, b] = side.make();
      const id = uuidv7();
      assert.equal(await a.state(id), 'missing');
      await a.append(id, 1);
      assert.equal(await b.state(id), 'live');
      await a.end(id);
      await a.end(id);
      assert.equal(await b.state(id), 'ended');
      await assert.rejects(b.append(id, 2), StreamEnded);
      assert.deepEqual(await collect(b.read(id)), [{ offset: 0, event: 1 }]);
    });

    test('a missing stream yields nothing at once', async () => {
      const [a] = side.make();
      assert.deepEqual(await collect(a.read(uuidv7())), []);
    });

    test('an abort signal stops a waiting reader', async () => {
      const [a] = side.make();
      const id = uuidv7();
      await a.append(id, 'x');
      const ctl = new AbortController();
      const reader = a.read(id, 0, { signal: ctl.signal })[Symbol.asyncIterator]();
      // Abort only once the reader has had what there is and waits for more: aborting before its
      // first read (a slow SUBSCRIBE under load) would test a different case.
      assert.deepEqual(await reader.next(), { done: false, value: { offset: 0, event: 'x' } });
      const waiting = reader.next();
      await delay(30);
      ctl.abort();
      assert.deepEqual(await waiting, { done: true, value: undefined });
      assert.equal(await a.state(id), 'live', 'the stream itself goes on');
    });

    test('an ended stream expires after its retention; an abandoned one after its max life', async () => {
      const [a, b] = side.make({ retentionSeconds: 1, maxLiveSeconds: 2 });
      const ended = uuidv7();
      const abandoned = uuidv7();
      await a.append(ended, 'x');
      await a.end(ended);
      await a.append(abandoned, 'y');
      const follower = collect(b.read(abandoned));
      await delay(1300);
      assert.equal(await b.state(ended), 'missing');
      assert.deepEqual(await collect(b.read(ended)), []);
      assert.equal(await b.state(abandoned), 'live');
      await delay(3000);
      assert.equal(await b.state(abandoned), 'missing');
      assert.deepEqual(await follower, [{ offset: 0, event: 'y' }], 'a follower of an expired stream stops');
    });

    test('signals reach listeners on every instance, and stop when unsubscribed', async () => {
      const [a, b] = side.make();
      const id = uuidv7();
      const heard: string[] = [];
      const stopA = await a.onSignal(id, (m) => heard.push(`a:${m}`));
      const stopB = await b.onSignal(id, (m) => heard.push(`b:${m}`));
      await b.onSignal(uuidv7(), (m) => heard.push(`other:${m}`));
      await b.signal(id, 'cancel');
      await eventually(() => assert.deepEqual([...heard].sort(), ['a:cancel', 'b:cancel']));
      await delay(100); // a stray delivery to the other stream's listener would have come by now
      assert.deepEqual([...heard].sort(), ['a:cancel', 'b:cancel']);
      await stopA();
      await stopB();
      await a.signal(id, 'again');
      await delay(100);
      assert.equal(heard.length, 2);
    });
  });
}
