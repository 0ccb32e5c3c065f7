import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { Writable } from 'node:stream';
import { describe, test } from 'node:test';
import pino from 'pino';
import { openDatabase } from '../../src/platform/db/database.ts';
import { bullmqQueue } from '../../src/platform/queue/bullmq-queue.ts';
import { eventually } from '../support/eventually.ts';
import { freePort } from '../support/process.ts';
import { REDIS_SERVER, startRedisServer } from '../support/redis.ts';

describe('BullMQ while Redis is away', { skip: !existsSync(REDIS_SERVER) && `needs ${REDIS_SERVER}` }, () => {
  // Jobs running again once it is back: test/platform/redis-outage.test.ts.
  test('says so once, as a warning, not once per queue and reconnect attempt at error level', async () => {
    const lines: Array<{ level: number; msg: string }> = [];
    const logger = pino({ level: 'info' }, new Writable({ write: (chunk, _e, done) => done(void lines.push(JSON.parse(String(chunk)))) }));
    const port = await freePort();
    const redis = await startRedisServer(port);
    const database = openDatabase({ dataDir: 'memory://' });
    await database.migrate();
    const queue = bullmqQueue({ db: database.db, logger, redisUrl: redis.url, redisPrefix: `parley:test:outage:${port}:`, closeTimeoutMs: 200 });
    const ran: string[] = [];
    const names = ['a', 'b', 'c', 'd', 'e', 'f'];
    for (const name of names) queue.process(name, async (data: { n: number }) => void ran.push(`${name}:${data.n}`));
    try {
      await queue.start();
      await queue.enqueue('a', { n: 1 });
      await eventually(() => assert.deepEqual(ran, ['a:1']));

      await redis.stop();
      await new Promise((r) => setTimeout(r, 3_000));
      const loud = lines.filter((l) => l.level >= 40);
      // Six workers and queues reported every reconnect attempt: hundreds of lines a minute, at error level.
      assert.ok(loud.length <= 2, `${loud.length} lines: ${loud.map((l) => l.msg).join(' | ')}`);
      assert.equal(loud.filter((l) => l.level >= 50).length, 0, 'an outage is a warning, not an error per queue');
      assert.ok(loud.some((l) => /cannot reach Redis/.test(l.msg)));

    } finally {
      await queue.close();
      await redis.stop();
      await database.close();
    }
  });
});
