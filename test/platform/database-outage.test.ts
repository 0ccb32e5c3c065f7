import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { sql } from 'drizzle-orm';
import { inTransaction, openDatabase } from '../../src/platform/db/database.ts';
import { startApp, type TestApp } from '../support/app.ts';
import { eventually } from '../support/eventually.ts';
import { createUser, type TestUser } from '../support/factories.ts';
import { assertUnavailable, proxiedPostgres, timed } from '../support/outage.ts';

const skip = !process.env.DATABASE_URL && 'needs PostgreSQL (DATABASE_URL)';

/** Well past the query bound the app runs with here (1.5 s), and far short of "hung". */
const within = { dependency: 'PostgreSQL', withinMs: 5_000 };

// PostgreSQL behind a proxy the test can stall or cut: a frozen network, a failover, a server that went away.
describe('PostgreSQL outage', { skip }, () => {
  let t: TestApp;
  let postgres: Awaited<ReturnType<typeof proxiedPostgres>>;
  let proxy: Awaited<ReturnType<typeof proxiedPostgres>>['proxy'];
  let u: TestUser;
  before(async () => {
    postgres = await proxiedPostgres();
    proxy = postgres.proxy;
    t = await startApp({ backend: 'postgres', env: { DATABASE_URL: postgres.url, DATABASE_QUERY_TIMEOUT_MS: '1500', DATABASE_CONNECT_TIMEOUT_MS: '1000' } });
    u = await createUser(t);
  });
  after(async () => {
    await proxy.heal();
    await t.close();
    await postgres.close();
  });

  const conversations = () => t.api('GET', '/v1/conversations', { token: u.accessToken });
  const gateway = () => t.api('POST', '/v1/chat/completions', { token: u.accessToken, body: { model: 'openai:gpt-4o-mini', messages: [{ role: 'user', content: 'x' }] } });

  test('stalled (connections accepted, nothing answered): requests and readiness are quick 503s; it recovers by itself once new connections pass', async () => {
    assert.equal((await conversations()).status, 200);
    proxy.stall();
    const ready = await timed(() => t.api('GET', '/ready'));
    assert.equal(ready.status, 503, ready.text);
    assert.equal(ready.body.checks.database, 'down');
    assert.ok(ready.ms < within.withinMs, `readiness answered in ${ready.ms} ms`);
    // More than the pool holds, side by side: each waits at most the query bound, none for ever.
    const stalled = await Promise.all(Array.from({ length: 12 }, () => timed(conversations)));
    for (const [i, res] of stalled.entries()) assertUnavailable(res, `request ${i}`, within);
    // New connections pass again; the stalled ones stay silent until their queries time out and they are replaced.
    await proxy.heal();
    await eventually(async () => assert.equal((await conversations()).status, 200), 10_000);
    assert.equal((await t.api('GET', '/ready')).status, 200);
  });

  test('refused and reset: a quick 503 dependency_unavailable on every API (OpenAI-shaped on the gateway), not a 500; then back', async () => {
    await proxy.cut();
    assertUnavailable(await timed(conversations), 'a problem+json route', within);
    assertUnavailable(await timed(() => t.api('POST', '/v1/auth/login', { body: { email: u.email, password: u.password } })), 'sign-in', within);
    const openAi = await timed(gateway);
    assertUnavailable(openAi, 'the gateway', within);
    assert.equal(openAi.body.error.type, 'server_error', 'in OpenAI’s shape');
    await proxy.heal();
    await eventually(async () => assert.equal((await conversations()).status, 200), 10_000);
  });

  test('transactions that fail on a stalled connection give it back: the pool is whole again once the database answers', async () => {
    // A proxy of its own: the app's idle connections are not to be stalled (node-postgres would wait for ever to close them).
    const { proxy: own, url } = await postgres.another();
    const small = openDatabase({ url, dataDir: 'memory://', poolSize: 2, queryTimeoutMs: 500, connectTimeoutMs: 500 });
    try {
      const count = () => inTransaction(small.db, async (tx) => ((await tx.execute(sql`select 1 as one`)) as unknown as { rows: unknown[] }).rows.length);
      assert.equal(await count(), 1);
      own.stall();
      // BEGIN goes unanswered: Drizzle's own transaction kept each such connection out of the pool for good.
      for (let i = 0; i < 4; i++) await assert.rejects(count());
      await own.heal();
      await eventually(async () => assert.equal(await count(), 1), 10_000);
      assert.deepEqual(await Promise.all([count(), count(), count()]), [1, 1, 1], 'both connections serve again');
    } finally {
      await own.close();
      await small.close();
    }
  });

  test('a connection reset in the middle of a transaction fails that transaction, and nothing else: no uncaught error takes the process down', async () => {
    const { proxy: own, url } = await postgres.another();
    const small = openDatabase({ url, dataDir: 'memory://', poolSize: 2, queryTimeoutMs: 2_000, connectTimeoutMs: 1_000 });
    try {
      const outcome = inTransaction(small.db, async (tx) => {
        await tx.execute(sql`select 1`);
        // The connection is checked out and idle between two statements when the network drops it.
        await own.cut();
        await new Promise((resolve) => setImmediate(resolve));
        await tx.execute(sql`select 1`);
      });
      await assert.rejects(outcome);
      await own.heal();
      await eventually(async () => assert.equal(((await small.db.execute(sql`select 1 as one`)) as unknown as { rows: unknown[] }).rows.length, 1), 10_000);
    } finally {
      await own.close();
      await small.close();
    }
  });
});
