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

    test('several counters at once count as each would alone, on the same counters', async () => {
      const f = side.make();
      const user = f.create({ name: 'many:user', points: 2, durationSeconds: 60 });
      const key = f.create({ name: 'many:key', points: 1, durationSeconds: 60 });
      const hits = [
        { limiter: user, key: 'u1' },
        { limiter: key, key: 'k1' },
      ];
      const first = await f.consumeMany(hits);
      assert.deepEqual(first.map((r) => [r.allowed, r.limit, r.remaining]), [[true, 2, 1], [true, 1, 0]]);
      assert.ok(first.every((r) => r.resetMs > 0 && r.resetMs <= 60_000));
      const second = await f.consumeMany(hits);
      assert.deepEqual(second.map((r) => [r.allowed, r.remaining]), [[true, 0], [false, 0]], 'the key is over its limit, the user at it');
      assert.equal((await user.consume('u1')).allowed, false, 'one consume sees what the batch counted');
      assert.equal((await user.peek('u1')).remaining, 0);

      // Peeking counts nothing; a subject never counted has its whole limit and no reset.
      const peeked = await f.peekMany([{ limiter: user, key: 'u2' }, { limiter: key, key: 'k1' }]);
      assert.deepEqual(peeked, [{ allowed: true, limit: 2, remaining: 2, resetMs: 0 }, { allowed: false, limit: 1, remaining: 0, resetMs: peeked[1]!.resetMs }]);
      assert.ok(peeked[1]!.resetMs > 0);
      assert.deepEqual((await f.peekMany([{ limiter: user, key: 'u2' }, { limiter: key, key: 'k2' }])).map((r) => r.remaining), [2, 1]);

      // Points, as tokens are counted; a reset clears what the batch counted.
      const tokens = f.create({ name: 'many:tokens', points: 100, durationSeconds: 60 });
      const counted = await f.consumeMany([{ limiter: tokens, key: 'u1', points: 60 }, { limiter: tokens, key: 'u2', points: 120 }]);
      assert.deepEqual(counted.map((r) => [r.allowed, r.remaining]), [[true, 40], [false, 0]]);
      await tokens.reset('u2');
      assert.equal((await f.peekMany([{ limiter: tokens, key: 'u1' }, { limiter: tokens, key: 'u2' }]))[1]!.remaining, 100);
    });

    test('a limiter that blocks beyond its window still does so in a batch', async () => {
      const f = side.make();
      const blocking = f.create({ name: 'many:block', points: 1, durationSeconds: 1, blockSeconds: 30 });
      const plain = f.create({ name: 'many:plain', points: 5, durationSeconds: 60 });
      const hits = [{ limiter: blocking, key: 'k' }, { limiter: plain, key: 'k' }];
      await f.consumeMany(hits);
      const refused = await f.consumeMany(hits);
      assert.equal(refused[0]!.allowed, false);
      assert.ok(refused[0]!.resetMs > 2000, 'blocked beyond the window');
      assert.deepEqual([refused[1]!.allowed, refused[1]!.remaining], [true, 3]);
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

describe('limiter [redis, round trips]', { skip: !process.env.REDIS_URL && 'REDIS_URL not set' }, () => {
  test('a batch of counters is one command to Redis, and so are the batches asked for together', async (t) => {
    const client = openRedis(process.env.REDIS_URL!);
    const monitor = await client.monitor();
    t.after(async () => {
      monitor.disconnect();
      await client.quit();
    });
    const prefix = `parley:test:${randomBytes(6).toString('hex')}:`;
    const f = redisLimiters(client, prefix);
    const hits = ['user', 'key', 'ip'].map((name) => ({ limiter: f.create({ name, points: 10, durationSeconds: 60 }), key: 's' }));
    const seen: string[] = [];
    let started = false;
    const ended = new Promise<void>((resolve) =>
      monitor.on('monitor', (_time: string, args: string[], source: string) => {
        const [command, first] = args.map(String);
        if (command!.toLowerCase() === 'echo') {
          started ||= first === `${prefix}start`;
          if (first === `${prefix}end`) resolve();
        } else if (started && source !== 'lua' && args.some((a) => String(a).startsWith(prefix))) seen.push(command!.toLowerCase());
      }),
    );
    await f.consumeMany(hits); // Redis learns the script
    await client.echo(`${prefix}start`);
    await f.consumeMany(hits);
    await f.peekMany(hits);
    // Callers of the same moment (requests that arrived together) share one call, each counted in turn.
    const together = await Promise.all(Array.from({ length: 5 }, () => f.consumeMany([hits[0]!])));
    await client.echo(`${prefix}end`);
    await ended;
    assert.deepEqual(seen, ['evalsha', 'evalsha', 'evalsha'], 'one script call for three consumes, one for three peeks, one for five callers');
    assert.deepEqual(together.map(([r]) => r!.remaining), [7, 6, 5, 4, 3], 'in the order they were asked');
  });
});

describe('limiter [redis, unreachable]', { skip: !process.env.REDIS_URL && 'REDIS_URL not set' }, () => {
  test('counts in this process while Redis cannot be reached, with one warning; in Redis again once it is back', async (t) => {
    const client = openRedis(process.env.REDIS_URL!);
    t.after(() => client.quit());
    await client.ping();
    const warnings: string[] = [];
    const logger = { warn: (_: unknown, msg: string) => warnings.push(msg) } as unknown as Logger;
    const factory = redisLimiters(client, `parley:test:${randomBytes(6).toString('hex')}:`, logger);
    const limiter = factory.create({ name: 'outage', points: 2, durationSeconds: 60 });

    client.disconnect();
    await once(client, 'end');
    const during = [await limiter.consume('k'), await limiter.consume('k'), await limiter.consume('k')];
    assert.deepEqual(during.map((r) => r.allowed), [true, true, false], 'the limit still holds, in memory');
    assert.equal((await limiter.peek('k')).allowed, false);
    assert.equal(warnings.length, 1, `one warning, not one per call: ${warnings.join('; ')}`);

    const many = factory.create({ name: 'outage:many', points: 1, durationSeconds: 60 });
    const batch = [{ limiter: many, key: 'a' }, { limiter: many, key: 'b' }];
    assert.deepEqual((await factory.consumeMany(batch)).map((r) => r.allowed), [true, true], 'a batch is counted in memory too');
    assert.deepEqual((await factory.consumeMany(batch)).map((r) => r.allowed), [false, false]);
    assert.deepEqual((await factory.peekMany(batch)).map((r) => r.allowed), [false, false]);
    assert.equal(warnings.length, 1, `still one warning: ${warnings.join('; ')}`);

    await client.connect();
    const back = await limiter.consume('k');
    assert.deepEqual([back.allowed, back.remaining], [true, 1], "Redis' own count, which the outage did not touch");
    assert.deepEqual((await factory.consumeMany(batch)).map((r) => r.allowed), [true, true], 'in Redis again');
  });
});
