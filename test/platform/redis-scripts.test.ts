import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, describe, test } from 'node:test';
import { Redis } from 'ioredis';
import { luaScript } from '../../src/platform/redis/scripts.ts';

describe('Lua scripts by SHA', { skip: !process.env.REDIS_URL && 'needs Redis (REDIS_URL)' }, () => {
  const redis = new Redis(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379', { lazyConnect: true });
  after(() => redis.quit());
  const key = `parley:test:${randomBytes(4).toString('hex')}:n`;

  test('runs by EVALSHA, and sends the text again when Redis has forgotten the script', async () => {
    const incr = luaScript(redis, "return redis.call('INCRBY', KEYS[1], ARGV[1]) -- test script " + key);
    assert.equal(await incr([key], [2]), 2);
    await redis.script('FLUSH');
    assert.equal(await incr([key], [3]), 5, 'NOSCRIPT was answered by loading the script');
    assert.equal(await incr([key], [1]), 6);
    const failing = luaScript(redis, "return redis.error_reply('BOOM') -- " + key);
    await assert.rejects(failing([], []), /BOOM/, 'script errors are not mistaken for NOSCRIPT');
    await redis.del(key);
  });
});
