import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import { after, describe, test } from 'node:test';
import { memorySlots, redisSlots, type ConnectionSlots, type RedisSlotOptions } from '../../../src/modules/realtime/slots.ts';
import { createLogger } from '../../../src/platform/observability/logger.ts';
import { openRedis, type Redis } from '../../../src/platform/redis/redis.ts';
import { dropRedisKeys } from '../../support/redis.ts';
import { eventually } from '../../support/eventually.ts';

const prefix = `parley:test:${randomBytes(4).toString('hex')}:`;
const logger = createLogger(process.env.TEST_LOG_LEVEL ?? 'silent');
const clients: Redis[] = [];
const instances: ConnectionSlots[] = [];

/** An instance of its own: its own Redis connection and instance id. */
function instance(opts: Omit<RedisSlotOptions, 'logger'>): { slots: ConnectionSlots; redis: Redis } {
  const redis = openRedis(process.env.REDIS_URL!);
  clients.push(redis);
  const slots = redisSlots(redis, prefix, { logger, ...opts });
  instances.push(slots);
  return { slots, redis };
}

after(async () => {
  await Promise.all(instances.map((s) => s.close()));
  await Promise.all(clients.map((c) => (c.status === 'end' ? undefined : c.quit())));
  if (process.env.REDIS_URL) await dropRedisKeys(prefix);
});

const kinds: Array<[string, (limit: number) => ConnectionSlots]> = [['memory', (limit) => memorySlots(limit)]];
if (process.env.REDIS_URL) kinds.push(['redis', (limit) => instance({ limit }).slots]);

for (const [kind, make] of kinds) {
  describe(`WebSocket connection slots [${kind}]`, () => {
    test('a user takes up to the limit; one more is refused; a release frees one; other users are apart', async () => {
      const slots = make(2);
      const [u, other] = [randomUUID(), randomUUID()];
      assert.equal(await slots.take(u, 's1'), true);
      assert.equal(await slots.take(u, 's2'), true);
      assert.equal(await slots.take(u, 's1'), true, 'a slot the socket holds is not taken twice');
      assert.equal(await slots.take(u, 's3'), false);
      assert.equal(await slots.take(other, 's1'), true);
      await slots.release(u, 's1');
      await slots.release(u, 's1');
      assert.equal(await slots.take(u, 's3'), true);
      assert.equal(await slots.take(u, 's4'), false, 'releasing twice freed one slot');
    });

    test('limit 0: no limit', async () => {
      const slots = make(0);
      const u = randomUUID();
      for (let i = 0; i < 50; i++) assert.equal(await slots.take(u, `s${i}`), true);
    });

    test('presence: connected while a user holds a slot, with a limit or without; not after the last release', async () => {
      for (const limit of [0, 3]) {
        const slots = make(limit);
        const [u, other] = [randomUUID(), randomUUID()];
        assert.equal(await slots.connected(u), false);
        await slots.take(u, 's1');
        await slots.take(u, 's2');
        assert.equal(await slots.connected(u), true);
        assert.equal(await slots.connected(other), false, 'only its own user');
        await slots.release(u, 's1');
        assert.equal(await slots.connected(u), true, 'one socket left');
        await slots.release(u, 's2');
        assert.equal(await slots.connected(u), false);
      }
    });
  });
}

describe('WebSocket connection slots across instances [redis]', { skip: !process.env.REDIS_URL && 'needs Redis (REDIS_URL)' }, () => {
  test('the limit holds across instances; a release or a close on one frees slots for the others', async () => {
    const a = instance({ limit: 2 }).slots;
    const b = instance({ limit: 2 }).slots;
    const u = randomUUID();
    assert.equal(await a.take(u, 's1'), true);
    assert.equal(await b.take(u, 's1'), true, 'socket ids of different instances are different slots');
    assert.equal(await a.take(u, 's2'), false);
    assert.equal(await b.take(u, 's2'), false);
    await a.release(u, 's1');
    assert.equal(await b.take(u, 's2'), true);
    assert.equal(await a.take(u, 's2'), false);
    await b.close();
    assert.equal(await a.take(u, 's2'), true);
    assert.equal(await a.take(u, 's3'), true);
  });

  test("presence holds across instances; a crashed instance's sockets stop counting once their TTL lapses", async () => {
    const opts = { limit: 0, ttlMs: 600, refreshMs: 100 };
    const live = instance(opts).slots;
    const crashed = instance(opts);
    const observer = instance(opts).slots;
    const [u, v] = [randomUUID(), randomUUID()];
    await live.take(u, 's');
    await crashed.slots.take(v, 's');
    assert.equal(await observer.connected(u), true, "another instance's socket counts");
    assert.equal(await observer.connected(v), true);
    // Dies: no renewal, no release.
    crashed.redis.disconnect();
    await eventually(async () => assert.equal(await observer.connected(v), false), 10_000);
    assert.equal(await observer.connected(u), true, 'the live instance renewed its socket');
    await live.release(u, 's');
    assert.equal(await observer.connected(u), false);
  });

  test("a dead instance's slots lapse after the TTL; a live instance's are renewed and stay", async () => {
    const opts = { limit: 2, ttlMs: 1_000, refreshMs: 100 };
    const live = instance(opts).slots;
    const dead = instance(opts);
    const other = instance(opts).slots;
    const [u, probe] = [randomUUID(), randomUUID()];
    // In this order: without renewals the live slot would lapse first, and the probe's last.
    assert.equal(await live.take(u, 's'), true);
    assert.equal(await dead.slots.take(u, 's'), true);
    assert.equal(await dead.slots.take(probe, 's1'), true);
    assert.equal(await dead.slots.take(probe, 's2'), true);
    assert.equal(await other.take(u, 'a'), false);
    // Dies: no renewal, no release.
    dead.redis.disconnect();
    // The probe free again: every slot taken before it has lapsed, unless renewed.
    await eventually(async () => assert.equal(await other.take(probe, 'x'), true), 10_000);
    assert.equal(await other.take(u, 'a'), true, "the dead instance's slot lapsed");
    assert.equal(await other.take(u, 'b'), false, 'the live instance renewed its slot');
  });
});
