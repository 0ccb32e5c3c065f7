import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { startApp, type TestApp } from '../../support/app.ts';
import { eventually } from '../../support/eventually.ts';
import { createUser, type TestUser } from '../../support/factories.ts';
import { startPushService } from '../../support/push-service.ts';

// A send reads the user's preferences, their choices per category and whether they have a browser to push to
// from what its process kept. A change made through another instance must hold on this one at once (the
// broadcast tells every instance), not after the copies expire.
describe('notifications: a change on one instance holds on the others [postgres]', { skip: !process.env.DATABASE_URL || !process.env.REDIS_URL }, () => {
  let a: TestApp;
  let b: TestApp;
  let admin: TestUser;
  let pushService: Awaited<ReturnType<typeof startPushService>>;
  const env = { PUSH_ALLOW_PRIVATE: 'true', VAPID_SUBJECT: 'mailto:ops@parley.test' };

  before(async () => {
    pushService = await startPushService();
    a = await startApp({ backend: 'postgres', env });
    b = await startApp({ sharedWith: a, env });
    admin = await createUser(a, { admin: true });
  });
  after(async () => {
    await b?.close();
    await a?.close();
    await pushService?.close();
  });

  /** Sent through B, which keeps what it read about the user. */
  const sendOnB = async (u: TestUser, title: string) => {
    const res = await b.api('POST', '/v1/notifications', { token: admin.accessToken, body: { userId: u.id, category: 'system.message', title } });
    assert.equal(res.status, 201, res.text);
    return res.body.channels as Record<string, { status: string; reason: string | null }>;
  };
  const expectOnB = (u: TestUser, check: (channels: Record<string, { status: string; reason: string | null }>) => void) =>
    // The notice crosses Redis: a few milliseconds, well inside this; the copies would live 30 s.
    eventually(async () => check(await sendOnB(u, 'check')), 3_000);

  test("a category turned off on A is off on B, which had just read the user's choices", async () => {
    const u = await createUser(a);
    assert.equal((await sendOnB(u, 'before')).email!.status, 'queued');
    const res = await a.api('PUT', '/v1/notifications/preferences', { token: u.accessToken, body: { preferences: [{ category: 'system.message', channel: 'email', enabled: false }] } });
    assert.equal(res.status, 200, res.text);
    await expectOnB(u, (c) => assert.deepEqual([c.email!.status, c.email!.reason, c.inApp!.status], ['suppressed', 'preference', 'sent']));
  });

  test('in-app turned off for everything in the preferences on A is off on B', async () => {
    const u = await createUser(a);
    assert.equal((await sendOnB(u, 'before')).inApp!.status, 'sent');
    const res = await a.api('PATCH', '/v1/users/me/preferences', { token: u.accessToken, body: { notifications: { inApp: false } } });
    assert.equal(res.status, 200, res.text);
    await expectOnB(u, (c) => assert.deepEqual([c.inApp!.status, c.inApp!.reason], ['suppressed', 'preference']));
  });

  test('a browser subscribed on A is reachable from B at once; deleted on A, it is not', async () => {
    const u = await createUser(a);
    assert.equal((await sendOnB(u, 'before')).push!.reason, 'unreachable: no_push_subscription');
    const sub = await a.api('POST', '/v1/notifications/push/subscriptions', { token: u.accessToken, body: pushService.browser().subscription });
    assert.equal(sub.status, 201, sub.text);
    await expectOnB(u, (c) => assert.equal(c.push!.status, 'queued'));
    assert.equal((await a.api('DELETE', `/v1/notifications/push/subscriptions/${sub.body.id}`, { token: u.accessToken })).status, 204);
    await expectOnB(u, (c) => assert.equal(c.push!.reason, 'unreachable: no_push_subscription'));
  });

  test('an account deleted on A is no recipient on B', async () => {
    const u = await createUser(a);
    await sendOnB(u, 'before');
    const del = await a.api('DELETE', '/v1/users/me', { token: u.accessToken, body: { password: u.password } });
    assert.equal(del.status, 204, del.text);
    await eventually(async () => {
      const res = await b.api('POST', '/v1/notifications', { token: admin.accessToken, body: { userId: u.id, category: 'system.message', title: 'gone' } });
      assert.equal(res.status, 404, res.text);
      assert.equal(res.body.code, 'user_not_found');
    }, 3_000);
  });
});
