import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { describe, test } from 'node:test';
import pino from 'pino';
import { openDatabase } from '../../src/platform/db/database.ts';
import { dbQueue } from '../../src/platform/queue/db-queue.ts';
import { eventually } from '../support/eventually.ts';
import { proxiedPostgres } from '../support/outage.ts';

const skip = !process.env.DATABASE_URL && 'needs PostgreSQL (DATABASE_URL)';

describe('the database job queue while PostgreSQL is away', { skip }, () => {
  test('says so once, as a warning, not four times a second at error level; and when it is back', async () => {
    const lines: Array<{ level: number; msg: string }> = [];
    const logger = pino({ level: 'info' }, new Writable({ write: (chunk, _e, done) => done(void lines.push(JSON.parse(String(chunk)))) }));
    const postgres = await proxiedPostgres();
    const database = openDatabase({ url: postgres.url, dataDir: '', poolSize: 2, queryTimeoutMs: 1_000, connectTimeoutMs: 500 });
    await database.migrate();
    const queue = dbQueue({ db: database.db, logger, pollMs: 50, lockMs: 600, closeTimeoutMs: 200 });
    const ran: number[] = [];
    queue.process('outage.echo', async (data: { n: number }) => void ran.push(data.n));
    try {
      await queue.start();
      await queue.enqueue('outage.echo', { n: 1 });
      await eventually(() => assert.deepEqual(ran, [1]));
      await postgres.proxy.cut();
      await eventually(() => assert.ok(lines.some((l) => /job queue cannot reach PostgreSQL/.test(l.msg))), 5_000);
      // Some forty polls, renewals and reclaims later: still the one line.
      await new Promise((r) => setTimeout(r, 2_000));
      const loud = lines.filter((l) => l.level >= 40);
      assert.equal(loud.length, 1, loud.map((l) => l.msg).join(' | '));
      await postgres.proxy.heal();
      await eventually(() => assert.ok(lines.some((l) => /job queue reaches PostgreSQL again/.test(l.msg))), 10_000);
      await queue.enqueue('outage.echo', { n: 2 });
      await eventually(() => assert.deepEqual(ran, [1, 2]));
    } finally {
      await queue.close();
      await database.close();
      await postgres.close();
    }
  });
});
