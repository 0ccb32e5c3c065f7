import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { sql } from 'drizzle-orm';
import { backends, startApp, type TestApp } from '../../support/app.ts';
import { eventually } from '../../support/eventually.ts';
import { createUser, type TestUser } from '../../support/factories.ts';
import { startPushService, type TestBrowser } from '../../support/push-service.ts';

const rows = async (t: TestApp, query: ReturnType<typeof sql>) => ((await t.deps.db.execute(query)) as unknown as { rows: Record<string, unknown>[] }).rows;

for (const backend of backends()) {
  describe(`notifications: web push [${backend}]`, () => {
    let t: TestApp;
    let admin: TestUser;
    let pushService: Awaited<ReturnType<typeof startPushService>>;

    before(async () => {
      pushService = await startPushService();
      // The test push service listens on loopback over plain http.
      t = await startApp({ backend, env: { PUSH_ALLOW_PRIVATE: 'true', VAPID_SUBJECT: 'mailto:ops@parley.test' } });
      admin = await createUser(t, { admin: true });
    });
    after(async () => {
      await t.close();
      await pushService.close();
    });

    const send = async (body: Record<string, unknown>) => {
      const res = await t.api('POST', '/v1/notifications', { token: admin.accessToken, body });
      assert.equal(res.status, 201, res.text);
      return res.body;
    };
    const pushStatus = async (u: TestUser, id: string) => (await t.api('GET', `/v1/notifications/${id}`, { token: u.accessToken })).body.channels.push;
    const subscribe = async (u: TestUser, browser: TestBrowser, label?: string) => {
      const res = await t.api('POST', '/v1/notifications/push/subscriptions', { token: u.accessToken, body: { ...browser.subscription, label } });
      assert.equal(res.status, 201, res.text);
      return res.body;
    };
    const list = async (u: TestUser) => (await t.api('GET', '/v1/notifications/push/subscriptions', { token: u.accessToken })).body.data;

    test('the VAPID public key is made once and kept encrypted; a subscribed browser decrypts the pushed notification', async () => {
      const key = await t.api('GET', '/v1/notifications/push/vapid-public-key');
      assert.equal(key.status, 200, key.text);
      const publicKey = key.body.publicKey as string;
      const point = Buffer.from(publicKey, 'base64url');
      assert.deepEqual([point.length, point[0]], [65, 4]);
      assert.equal((await t.api('GET', '/v1/notifications/push/vapid-public-key')).body.publicKey, publicKey);
      const stored = await rows(t, sql`select public_key, private_key_enc from push_vapid_keys`);
      assert.equal(stored.length, 1);
      assert.match(String(stored[0]!.private_key_enc), /^v\d+\./, 'the private key is a ciphertext');

      const u = await createUser(t);
      const browser = pushService.browser();
      const sub = await subscribe(u, browser, 'Work laptop');
      assert.equal(sub.label, 'Work laptop');
      assert.equal(sub.pushService, new URL(pushService.origin).host);
      const token = browser.subscription.endpoint.split('/').pop()!;
      assert.ok(!sub.endpointHint.includes(token), 'the endpoint is never shown in full');
      const secret = await rows(t, sql`select secret_enc from push_subscriptions where id = ${sub.id}`);
      assert.ok(!String(secret[0]!.secret_enc).includes(token), 'the endpoint is stored encrypted');

      // The same browser registering again updates its row.
      const again = await t.api('POST', '/v1/notifications/push/subscriptions', { token: u.accessToken, body: { ...browser.subscription, label: 'Laptop' } });
      assert.equal(again.status, 200, again.text);
      assert.equal(again.body.id, sub.id);
      assert.deepEqual((await list(u)).map((s: any) => [s.id, s.label]), [[sub.id, 'Laptop']]);

      const n = await send({ userId: u.id, category: 'system.message', title: 'Deploy finished', body: 'v2 is live.', link: '/status', data: { build: 42 } });
      assert.equal(n.channels.push.status, 'queued');
      const [message] = await eventually(() => {
        assert.equal(browser.received.length, 1, browser.refused.join('; '));
        return browser.received;
      }, 15_000);
      assert.deepEqual(JSON.parse(message!.plaintext), { id: n.id, title: 'Deploy finished', body: 'v2 is live.', link: '/status', category: 'system.message', priority: 'normal', data: { build: 42 } });
      assert.equal(message!.vapidKey, publicKey);
      assert.equal(message!.claims.sub, 'mailto:ops@parley.test');
      assert.equal(message!.ttl, 24 * 3600);
      assert.equal(message!.urgency, 'normal');
      const done = await eventually(async () => {
        const s = await pushStatus(u, n.id);
        assert.equal(s.status, 'sent');
        return s;
      });
      assert.deepEqual([done.attempts, done.reason], [1, null]);
      assert.ok((await list(u))[0].lastSentAt);

      // Re-registered without a label, it keeps its own; another user signing in on that browser takes it over, without the label.
      assert.equal((await t.api('POST', '/v1/notifications/push/subscriptions', { token: u.accessToken, body: browser.subscription })).body.label, 'Laptop');
      const next = await createUser(t);
      const taken = await t.api('POST', '/v1/notifications/push/subscriptions', { token: next.accessToken, body: browser.subscription });
      assert.equal(taken.status, 200, taken.text);
      assert.deepEqual([taken.body.id, taken.body.label, taken.body.lastSentAt], [sub.id, null, null]);
      assert.deepEqual(await list(u), []);
    });

    test('a critical notification goes with high urgency; a long body is trimmed to fit one 4 KB record', async () => {
      const u = await createUser(t);
      const browser = pushService.browser();
      await subscribe(u, browser);
      await send({ userId: u.id, category: 'system.message', title: 'Disk full', body: 'é'.repeat(9000), priority: 'critical', data: { blob: 'x'.repeat(5000) } });
      const [message] = await eventually(() => {
        assert.equal(browser.received.length, 1, browser.refused.join('; '));
        return browser.received;
      }, 15_000);
      assert.equal(message!.urgency, 'high');
      assert.ok(Buffer.byteLength(message!.plaintext) <= 3993, `${Buffer.byteLength(message!.plaintext)} bytes`);
      const payload = JSON.parse(message!.plaintext);
      assert.equal(payload.title, 'Disk full');
      assert.equal(payload.data, undefined, 'data that does not fit is left out');
      assert.match(payload.body, /^é+…$/);
    });

    test('bad subscriptions are refused with 400', async () => {
      const u = await createUser(t);
      const good = pushService.browser().subscription;
      const post = (body: unknown) => t.api('POST', '/v1/notifications/push/subscriptions', { token: u.accessToken, body });
      const point = Buffer.from(good.keys.p256dh, 'base64url');
      const cases: [string, unknown][] = [
        ['p256dh too short', { ...good, keys: { ...good.keys, p256dh: point.subarray(0, 33).toString('base64url') } }],
        ['p256dh compressed form', { ...good, keys: { ...good.keys, p256dh: Buffer.concat([Buffer.from([2]), point.subarray(1, 33)]).toString('base64url') } }],
        ['p256dh off the curve', { ...good, keys: { ...good.keys, p256dh: Buffer.concat([point.subarray(0, 64), Buffer.from([point[64]! ^ 1])]).toString('base64url') } }],
        ['p256dh not base64url', { ...good, keys: { ...good.keys, p256dh: `${good.keys.p256dh.slice(0, -2)}+/` } }],
        ['auth of 15 bytes', { ...good, keys: { ...good.keys, auth: Buffer.alloc(15, 1).toString('base64url') } }],
        ['no keys', { endpoint: good.endpoint }],
        ['not a URL', { ...good, endpoint: 'push-service/abc' }],
        ['ftp endpoint', { ...good, endpoint: 'ftp://push.example/abc' }],
        ['credentials in the endpoint', { ...good, endpoint: good.endpoint.replace('http://', 'http://user:pw@') }],
        ['already expired', { ...good, expirationTime: Date.now() - 1000 }],
        ['expiring after year 9999', { ...good, expirationTime: 1e20 }],
        ['an unknown field', { ...good, extra: true }],
      ];
      for (const [why, body] of cases) {
        const res = await post(body);
        assert.equal(res.status, 400, `${why}: ${res.text}`);
        assert.match(res.headers.get('content-type') ?? '', /problem\+json/, why);
      }
      assert.deepEqual(await list(u), []);
      assert.equal((await post(good)).status, 201);
    });

    test("another user's subscription is not theirs to see or delete", async () => {
      const [owner, other] = [await createUser(t), await createUser(t)];
      const sub = await subscribe(owner, pushService.browser());
      assert.deepEqual(await list(other), []);
      const res = await t.api('DELETE', `/v1/notifications/push/subscriptions/${sub.id}`, { token: other.accessToken });
      assert.equal(res.status, 404, res.text);
      assert.equal(res.body.code, 'push_subscription_not_found');
      assert.equal((await list(owner)).length, 1);
      assert.equal((await t.api('DELETE', `/v1/notifications/push/subscriptions/${sub.id}`, { token: owner.accessToken })).status, 204);
      assert.deepEqual(await list(owner), []);
      assert.equal((await t.api('GET', '/v1/notifications/push/subscriptions')).status, 401);
    });

    test('a 410 from the push service removes that subscription; the delivery says why', async () => {
      const u = await createUser(t);
      const browser = pushService.browser();
      await subscribe(u, browser);
      browser.gone = true;
      const n = await send({ userId: u.id, category: 'system.message', title: 'Anyone there?' });
      const s = await eventually(async () => {
        const status = await pushStatus(u, n.id);
        assert.equal(status.status, 'failed');
        return status;
      }, 15_000);
      assert.equal(s.attempts, 1);
      assert.match(s.reason, /410/);
      assert.match(s.reason, /removed/);
      assert.deepEqual(await list(u), []);
      // Nothing left to push to: the next one is not even queued.
      const next = await send({ userId: u.id, category: 'system.message', title: 'Still there?' });
      assert.deepEqual([next.channels.push.status, next.channels.push.reason], ['suppressed', 'unreachable: no_push_subscription']);
    });

    test('one browser taking it is enough: sent, and the gone one is removed', async () => {
      const u = await createUser(t);
      const [phone, laptop] = [pushService.browser(), pushService.browser()];
      await subscribe(u, phone, 'Phone');
      await subscribe(u, laptop, 'Laptop');
      phone.gone = true;
      const n = await send({ userId: u.id, category: 'system.message', title: 'Two devices' });
      await eventually(async () => assert.equal((await pushStatus(u, n.id)).status, 'sent'), 15_000);
      assert.equal(laptop.received.length, 1);
      assert.deepEqual((await list(u)).map((s: any) => s.label), ['Laptop']);
    });

    test('refused by every browser (403): failed at once, and the subscription is kept', async () => {
      const u = await createUser(t);
      const browser = pushService.browser();
      await subscribe(u, browser, 'Tablet');
      browser.answers.push({ status: 403, headers: {} });
      const n = await send({ userId: u.id, category: 'system.message', title: 'Wrong key' });
      const s = await eventually(async () => {
        const status = await pushStatus(u, n.id);
        assert.equal(status.status, 'failed');
        return status;
      }, 15_000);
      assert.equal(s.attempts, 1, 'not retried');
      assert.match(s.reason, /Tablet .*HTTP 403/);
      assert.equal((await list(u)).length, 1);
    });

    test('a 429 with Retry-After is retried after the wait, then sent', async () => {
      const u = await createUser(t);
      const browser = pushService.browser();
      await subscribe(u, browser);
      browser.answers.push({ status: 429, headers: { 'retry-after': '1' } });
      const n = await send({ userId: u.id, category: 'system.message', title: 'Slow down' });
      const s = await eventually(async () => {
        const status = await pushStatus(u, n.id);
        assert.equal(status.status, 'sent');
        return status;
      }, 20_000);
      assert.equal(s.attempts, 2);
      assert.equal(browser.received.length, 1);
      assert.equal(JSON.parse(browser.received[0]!.plaintext).title, 'Slow down');
    });

    test('without a subscription the push is suppressed as unreachable', async () => {
      const u = await createUser(t);
      const n = await send({ userId: u.id, category: 'system.message', title: 'Nowhere to go' });
      assert.deepEqual([n.channels.push.status, n.channels.push.reason], ['suppressed', 'unreachable: no_push_subscription']);
      assert.equal(n.channels.inApp.status, 'sent');
    });

    test('a subscription that has expired since it was registered does not count: the push is unreachable, a live one still counts', async () => {
      const u = await createUser(t);
      await subscribe(u, pushService.browser(), 'Old phone');
      // Expiring in a moment: what a send learns of it is kept no longer than that.
      await t.deps.db.execute(sql`update push_subscriptions set expires_at = now() + interval '300 milliseconds' where user_id = ${u.id}`);
      const before = await send({ userId: u.id, category: 'system.message', title: 'Before' });
      assert.equal(before.channels.push.status, 'queued');
      await eventually(async () => {
        const { rows } = (await t.deps.db.execute(sql`select count(*)::int as n from push_subscriptions where user_id = ${u.id} and expires_at > now()`)) as unknown as { rows: { n: number }[] };
        assert.equal(rows[0]!.n, 0);
      });
      const n = await send({ userId: u.id, category: 'system.message', title: 'Expired' });
      assert.deepEqual([n.channels.push.status, n.channels.push.reason], ['suppressed', 'unreachable: no_push_subscription']);
      // A browser subscribing again counts at once.
      await subscribe(u, pushService.browser(), 'New phone');
      const live = await send({ userId: u.id, category: 'system.message', title: 'Live' });
      assert.equal(live.channels.push.status, 'queued');
    });

    test('quiet hours hold a push until they end', async () => {
      const u = await createUser(t);
      const browser = pushService.browser();
      await subscribe(u, browser);
      const hhmm = (d: Date) => d.toISOString().slice(11, 16);
      const now = Date.now();
      const prefs = await t.api('PATCH', '/v1/users/me/preferences', { token: u.accessToken, body: { notifications: { quietHours: { start: hhmm(new Date(now - 3600_000)), end: hhmm(new Date(now + 3600_000)) } } } });
      assert.equal(prefs.status, 200, prefs.text);
      const n = await send({ userId: u.id, category: 'system.message', title: 'Shh' });
      assert.equal(n.channels.push.status, 'held');
      assert.equal(n.channels.push.reason, 'quiet_hours');
      const until = Date.parse(n.channels.push.heldUntil);
      assert.ok(until > now + 3000_000 && until <= now + 3660_000, n.channels.push.heldUntil);
      assert.equal(browser.received.length, 0);
    });
  });
}

if (backends().includes('postgres')) {
  describe('notifications: web push, two instances [postgres]', () => {
    test('instances starting together on an empty database make one VAPID key pair', async () => {
      const first = await startApp({ backend: 'postgres', worker: false });
      const second = await startApp({ sharedWith: first, worker: false });
      try {
        const keys = await Promise.all([first, second, first, second].map((t) => t.services.webPush!.vapid.get()));
        assert.equal(new Set(keys.map((k) => k.publicKey)).size, 1);
        assert.equal((await rows(first, sql`select id from push_vapid_keys`)).length, 1);
      } finally {
        await second.close();
        await first.close();
      }
    });
  });
}

describe('notifications: web push with default settings', () => {
  let t: TestApp;
  before(async () => {
    t = await startApp({ env: { PUBLIC_URL: 'https://chat.example.com' } });
  });
  after(() => t.close());

  test('endpoints must be https on a public address', async () => {
    const u = await createUser(t);
    const push = await startPushService();
    try {
      const { keys } = push.browser().subscription;
      const post = (endpoint: string) => t.api('POST', '/v1/notifications/push/subscriptions', { token: u.accessToken, body: { endpoint, keys } });
      const http = await post(`${push.origin}/push/abc`);
      assert.equal(http.status, 400, http.text);
      assert.equal(http.body.code, 'push_endpoint_invalid');
      for (const endpoint of ['https://127.0.0.1/push/abc', 'https://10.1.2.3/push/abc', 'https://[::1]/push/abc', 'https://localhost/push/abc']) {
        const res = await post(endpoint);
        assert.equal(res.status, 400, `${endpoint}: ${res.text}`);
        assert.equal(res.body.code, 'push_endpoint_unreachable', endpoint);
      }
    } finally {
      await push.close();
    }
  });

  test("the VAPID subject defaults to the operator's address at PUBLIC_URL's host", () => {
    assert.equal(t.services.webPush!.subject, 'mailto:admin@chat.example.com');
  });
});
