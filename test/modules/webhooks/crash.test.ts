import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { startApp, type TestApp } from '../../support/app.ts';
import { eventually } from '../../support/eventually.ts';
import { createUser } from '../../support/factories.ts';
import { startServer, type ServerProcess } from '../../support/process.ts';
import { startReceiver, verifies } from './receiver.ts';

// A worker process of its own needs a database and queue it can share: PostgreSQL and Redis.
const ENV = { WEBHOOKS_ALLOW_PRIVATE: 'true', WEBHOOKS_TIMEOUT_MS: '10000', WEBHOOKS_RETRY_SCALE: '0.001', JOB_LOCK_MS: '1000' };

describe('webhooks: a worker killed mid-delivery', { skip: !process.env.DATABASE_URL }, () => {
  let t: TestApp;
  let survivor: TestApp | undefined;
  let worker: ServerProcess | undefined;
  let receiver: Awaited<ReturnType<typeof startReceiver>>;

  before(async () => {
    receiver = await startReceiver({ '/crash': (n) => (n === 1 ? 'hang' : { status: 200 }) });
    t = await startApp({ backend: 'postgres', worker: false, env: ENV });
  });
  after(async () => {
    worker?.child.kill('SIGKILL');
    await survivor?.close();
    await t.close();
    await receiver.close();
  });

  test('the message is delivered by another worker, with the same webhook-id: never lost', async () => {
    const config = t.deps.config;
    worker = await startServer(
      { ...ENV, DATABASE_URL: config.databaseUrl!, REDIS_URL: config.redisUrl!, REDIS_PREFIX: config.redisPrefix, PARLEY_MASTER_KEY: config.masterKey!.toString('base64'), PUBLIC_URL: config.publicUrl },
      'worker',
    );
    const u = await createUser(t);
    const created = await t.api('POST', '/v1/webhooks/endpoints', { token: u.accessToken, body: { url: `${receiver.url}/crash`, events: ['file.ready'] } });
    assert.equal(created.status, 201, created.text);
    const message = (await t.api('POST', `/v1/webhooks/endpoints/${created.body.id}/test`, { token: u.accessToken })).body;
    // The worker process is in the middle of the POST: killed without a chance to record anything.
    await eventually(() => assert.equal(receiver.on('/crash').length, 1), 30_000);
    worker.child.kill('SIGKILL');
    await worker.exited;

    survivor = await startApp({ sharedWith: t, env: ENV });
    await eventually(async () => {
      const got = await t.api('GET', `/v1/webhooks/messages/${message.id}`, { token: u.accessToken });
      assert.equal(got.body.status, 'delivered');
    }, 30_000);
    const [first, second] = receiver.on('/crash');
    assert.equal(first!.headers['webhook-id'], message.id);
    assert.equal(second!.headers['webhook-id'], message.id, 'the receiver can tell it is the same message');
    assert.ok(verifies(created.body.secret, second!));
    const attempts = (await t.api('GET', `/v1/webhooks/messages/${message.id}/attempts`, { token: u.accessToken })).body.data;
    assert.deepEqual(attempts.map((a: { statusCode: number }) => a.statusCode), [200]);
    assert.equal(receiver.on('/crash').length, 2);
  });
});
