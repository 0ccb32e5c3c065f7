import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { startApp, type TestApp } from '../../support/app.ts';
import { eventually } from '../../support/eventually.ts';
import { createUser } from '../../support/factories.ts';
import { startServer, type ServerProcess } from '../../support/process.ts';
import { startSmtp } from '../../support/smtp.ts';

// A worker process of its own needs a database and queue it can share: PostgreSQL and Redis.
describe('notifications: a worker killed mid-delivery', { skip: !process.env.DATABASE_URL }, () => {
  let t: TestApp;
  let survivor: TestApp | undefined;
  let worker: ServerProcess | undefined;
  let smtp: Awaited<ReturnType<typeof startSmtp>>;
  let env: Record<string, string>;

  before(async () => {
    smtp = await startSmtp({ hangFirst: /Kept safe/ });
    env = { SMTP_URL: smtp.url, MAIL_FROM: 'Parley <robot@parley.test>', JOB_LOCK_MS: '1000' };
    t = await startApp({ backend: 'postgres', worker: false, env });
  });
  after(async () => {
    worker?.child.kill('SIGKILL');
    await survivor?.close();
    await t.close();
    await smtp.close();
  });

  test('the email is sent by another worker: never lost, the try counted on the delivery', async () => {
    const config = t.deps.config;
    worker = await startServer(
      { ...env, DATABASE_URL: config.databaseUrl!, REDIS_URL: config.redisUrl!, REDIS_PREFIX: config.redisPrefix, PARLEY_MASTER_KEY: config.masterKey!.toString('base64'), PUBLIC_URL: config.publicUrl },
      'worker',
    );
    const [admin, u] = await Promise.all([createUser(t, { admin: true }), createUser(t)]);
    const sent = await t.api('POST', '/v1/notifications', { token: admin.accessToken, body: { userId: u.id, category: 'system.message', title: 'Kept safe' } });
    assert.equal(sent.status, 201, sent.text);
    // The worker process is in the middle of the SMTP conversation: killed without a chance to record anything.
    await eventually(() => assert.equal(smtp.stalled.length, 1), 30_000);
    worker.child.kill('SIGKILL');
    await worker.exited;

    survivor = await startApp({ sharedWith: t, env });
    const email = await eventually(async () => {
      const n = (await t.api('GET', `/v1/notifications/${sent.body.id}`, { token: u.accessToken })).body;
      assert.equal(n.channels.email.status, 'sent');
      return n.channels.email;
    }, 30_000);
    assert.equal(email.attempts, 2, 'the killed try counts');
    assert.equal(smtp.to(u.email).filter((m) => m.message.includes('Kept safe')).length, 1, 'accepted once');
  });
});
