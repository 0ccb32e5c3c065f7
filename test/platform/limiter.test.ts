import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { after, describe, test } from 'node:test';
import type { Logger } from '../../src/platform/observability/logger.ts';
import { memoryLimiters, redisLimiters, type LimiterFactory } from '../../src/platform/ratelimit/limiter.ts';
import { openRedis, type Redis } from '../../src/platform/redis/redis.ts';

const sides: Array<{ name: string; make(): LimiterFactory; skip?: string | false }> = [
  { name: 'memory', make: () => memoryLimiters() },
  {
    name: 'redis',
    skip: !process.env.REDIS_URL && 'REDIS_URL not set',
    make: () => redisLimiters((redis ??= openRedis(process.env.REDIS_URL!)), `parley:test:${randomBytes(6).toString('hex')}:`),
  },
];
let redis: Redis | undefined;
after(() => redis?.quit());

for (const side of sides) {
  describe(`limiter [${side.name}]`, { skip: side.skip }, () => {
    test('N hits are allowed, then the key is blocked until reset', async () => {
      const limiter = side.make().create({ name: 'login', points: 3, durationSeconds: 60 });
      const results = [];
      for (let i = 0; i < 5; i++) results.push(await limiter.consume('1.2.3.4'));
      assert.deepEqual(results.map((r) => r.allowed), [true, true, true, false, false]);
      assert.deepEqual(results.map((r) => r.remaining), [2, 1, 0, 0, 0]);
      assert.ok(results.every((r) => r.limit === 3));
      assert.ok(results[3]!.resetMs > 0 && results[3]!.resetMs <= 60_000);

      assert.equal((await limiter.consume('5.6.7.8')).allowed, true, 'keys are counted apart');
      await limiter.reset('1.2.3.4');
      assert.equal((await limiter.consume('1.2.3.4')).allowed, true);
    });

    test('peek reads without counting', async () => {
      const limiter = side.make().create({ name: 'peek', points: 2, durationSeconds: 60 });
      assert.deepEqual(await limiter.peek('k'), { allowed: true, limit: 2, remaining: 2, resetMs: 0 });
      await limiter.consume('k');
      assert.equal((await limiter.peek('k')).remaining, 1);
      assert.equal((await limiter.peek('k')).remaining, 1);
      await limiter.consume('k');
      await limiter.consume('k');
      assert.equal((await limiter.peek('k')).allowed, false);
    });

    test('a window ends and a block lasts its own time', async () => {
      const f = side.make();
      const windowed = f.create({ name: 'window', points: 1, durationSeconds: 1 });
      const blocking = f.create({ name: 'block', points: 1, durationSeconds: 1, blockSeconds: 30 });
      for (const l of [windowed, blocking]) {
        assert.equal((await l.consume('k')).allowed, true);
        assert.equal((await l.consume('k')).allowed, false);
      }
      const blocked = await blocking.consume('k');
      assert.ok(blocked.resetMs > 2000, 'blocked beyond the window');
      await new Promise((r) => setTimeout(r, 1100));
      assert.equal((await windowed.consume('k')).allowed, true, 'a new window');
      assert.equal((await blocking.consume('k')).allowed, false, 'still blocked');
    });

    test('limiters with different names do not share counts', async () => {
      const f = side.make();
      const a = f.create({ name: 'a', points: 1, durationSeconds: 60 });
      const b = f.create({ name: 'b', points: 1, durationSeconds: 60 });
      assert.equal((await a.consume('k')).allowed, true);
      assert.equal((await b.consume('k')).allowed, true);
    });
  });
}

describe('limiter [redis, unreachable]', { skip: !process.env.REDIS_URL && 'REDIS_URL not set' }, () => {
  test('counts in this process while Redis cannot be reached, with one warning; in Redis again once it is back', async (t) => {
    const client = openRedis(process.env.REDIS_URL!);
    t.after(() => client.quit());
    await client.ping();
    const warnings: string[] = [];
    const logger = { warn: (_: unknown, msg: string) => warnings.push(msg) } as unknown as Logger;
    const limiter = redisLimiters(client, `parley:test:${randomBytes(6).toString('hex')}:`, logger).create({ name: 'outage', points: 2, durationSeconds: 60 });

    client.disconnect();
    await once(client, 'end');
    const during = [await limiter.consume('k'), await limiter.consume('k'), await limiter.consume('k')];
    assert.deepEqual(during.map((r) => r.allowed), [true, true, false], 'the limit still holds, in memory');
    assert.equal((await limiter.peek('k')).allowed, false);
    assert.equal(warnings.length, 1, `one warning, not one per call: ${warnings.join('; ')}`);

    await client.connect();
    const back = await limiter.consume('k');
    assert.deepEqual([back.allowed, back.remaining], [true, 1], "Redis' own count, which the outage did not touch");
  });
});
