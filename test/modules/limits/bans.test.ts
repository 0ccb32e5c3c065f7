import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import type { Principal } from '../../../src/modules/auth/authenticator.ts';
import { backends, startApp, type TestApp } from '../../support/app.ts';
import { eventually } from '../../support/eventually.ts';
import { createUser, type TestUser } from '../../support/factories.ts';

// Three refused requests within ten minutes ban for fifteen; TRUST_PROXY lets a test pick its client address.
const ENV = {
  RATE_LIMIT_ENABLED: 'true',
  TRUST_PROXY: 'true',
  RATE_LIMIT_USER_RPM: '3',
  RATE_LIMIT_KEY_RPM: '1000',
  RATE_LIMIT_IP_RPM: '1000',
  RATE_LIMIT_KEY_TPM: '100',
  RATE_LIMIT_BAN_VIOLATIONS: '3',
  RATE_LIMIT_BAN_WINDOW_SECONDS: '600',
  RATE_LIMIT_BAN_SECONDS: '900',
};

let ipSeq = 0;
const freshIp = () => (++ipSeq, `10.2.${ipSeq >> 8}.${ipSeq & 255}`);

for (const backend of backends()) {
  describe(`bans [${backend}]`, () => {
    let t: TestApp;
    let root: TestUser;
    before(async () => {
      t = await startApp({ backend, env: ENV });
      root = await createUser(t, { admin: true });
    });
    after(() => t.close());

    const me = (token: string, ip = freshIp()) => t.api('GET', '/v1/users/me', { token, headers: { 'x-forwarded-for': ip } });
    const asAdmin = (method: string, path: string, body?: unknown) => t.api(method, path, { token: root.accessToken, body, headers: { 'x-forwarded-for': freshIp() } });
    const ban = async (kind: string, subject: string, seconds = 600) => {
      const res = await asAdmin('POST', '/v1/admin/bans', { kind, subject, seconds, reason: 'testing' });
      assert.equal(res.status, 201, res.text);
      return res.body;
    };
    const assertBanned = (res: Awaited<ReturnType<typeof me>>) => {
      assert.equal(res.status, 403, res.text);
      assert.equal(res.body.code, 'banned');
      assert.match(res.body.detail, new RegExp(res.body.expiresAt.replace(/[.]/g, '\\.')));
      assert.ok(Number(res.headers.get('retry-after')) >= 1);
    };

    test('repeated violations ban the user; admins see the ban; lifting restores access at once', async () => {
      const u = await createUser(t);
      for (let i = 0; i < 3; i++) assert.equal((await me(u.accessToken)).status, 200);
      for (let i = 0; i < 3; i++) assert.equal((await me(u.accessToken)).status, 429, `violation ${i + 1}`);

      const refused = await me(u.accessToken);
      assertBanned(refused);
      const retryAfter = Number(refused.headers.get('retry-after'));
      assert.ok(retryAfter > 890 && retryAfter <= 900, `retry-after ${retryAfter}`);
      assert.ok(Math.abs(Date.parse(refused.body.expiresAt) - (Date.now() + 900_000)) < 10_000);

      const listed = await asAdmin('GET', `/v1/admin/bans?kind=user&subject=${u.id}&active=true`);
      assert.equal(listed.status, 200, listed.text);
      assert.equal(listed.body.data.length, 1);
      const [b] = listed.body.data;
      assert.equal(b.kind, 'user');
      assert.equal(b.subject, u.id);
      assert.equal(b.violations, 3);
      assert.equal(b.active, true);
      assert.equal(b.liftedAt, null);
      assert.equal(b.expiresAt, refused.body.expiresAt);
      const [auto] = await t.services.audit.list({ limit: 5, userId: u.id, action: 'ban.created' });
      assert.equal(auto?.actorId, null, 'an automatic ban has no actor');
      assert.equal(auto?.metadata.banId, b.id);
      assert.equal(auto?.metadata.automatic, true);

      const lifted = await asAdmin('DELETE', `/v1/admin/bans/${b.id}`);
      assert.equal(lifted.status, 200, lifted.text);
      assert.equal(lifted.body.active, false);
      assert.equal(lifted.body.liftedBy, root.id);
      assert.ok(lifted.body.liftedAt);
      const back = await me(u.accessToken);
      assert.equal(back.status, 200, 'access is back at once, with fresh counters');
      assert.equal(back.headers.get('ratelimit-remaining'), '2');

      assert.deepEqual((await asAdmin('GET', `/v1/admin/bans?subject=${u.id}&active=true`)).body.data, []);
      assert.deepEqual((await asAdmin('GET', `/v1/admin/bans?subject=${u.id}&active=false`)).body.data.map((x: { id: string }) => x.id), [b.id]);
      const again = await asAdmin('DELETE', `/v1/admin/bans/${b.id}`);
      assert.equal(again.status, 200, 'lifting twice changes nothing');
      assert.equal(again.body.liftedAt, lifted.body.liftedAt);
      const [entry] = await t.services.audit.list({ limit: 5, userId: u.id, action: 'ban.lifted' });
      assert.equal(entry?.actorId, root.id);
      assert.equal(entry?.metadata.banId, b.id);
    });

    test('exhausted token budgets count as violations too: the key is banned, the session is not', async () => {
      const u = await createUser(t);
      const key = await t.api('POST', '/v1/api-keys', { token: u.accessToken, body: { name: 'k' } });
      const p: Principal = { userId: u.id, role: 'user', via: 'api_key', apiKeyId: key.body.id, scopes: [] };
      await t.services.limits.addTokens(p, 150);
      for (let i = 0; i < 3; i++) await assert.rejects(t.services.limits.checkTokens(p), { code: 'token_rate_limited' });
      assertBanned(await me(key.body.key));
      assert.equal((await me(u.accessToken)).status, 200);
      const [b] = (await asAdmin('GET', `/v1/admin/bans?kind=api_key&subject=${key.body.id}`)).body.data;
      assert.equal(b.violations, 3);
    });

    test('an admin bans an IP: everyone behind it is refused, however the address is written; admins are not', async () => {
      const ip = freshIp();
      const created = await ban('ip', `::FFFF:${ip}`, 60);
      assert.equal(created.subject, ip, 'stored normalized');
      assert.equal(created.violations, 0);
      assert.equal(created.reason, 'testing');
      assert.ok(Math.abs(Date.parse(created.expiresAt) - (Date.now() + 60_000)) < 10_000);
      const u = await createUser(t);
      assertBanned(await me(u.accessToken, ip));
      assertBanned(await me(u.accessToken, `::ffff:${ip}`));
      assert.equal((await me(u.accessToken)).status, 200, 'from another address');
      assert.equal((await me(root.accessToken, ip)).status, 200, 'admins can always reach the API to lift bans');
      const [entry] = await t.services.audit.list({ limit: 1, action: 'ban.created' });
      assert.equal(entry?.actorId, root.id);
      assert.equal(entry?.metadata.banId, created.id);
    });

    test('an IPv6 ban covers the /64 of the address, however the address is written', async () => {
      const net = `2001:db8:${(++ipSeq).toString(16)}:a`;
      const created = await ban('ip', `2001:0DB8:${(ipSeq).toString(16).padStart(4, '0')}:000A:0:0:0:1`, 60);
      assert.equal(created.subject, `${net}::/64`, 'stored as the canonical /64');
      const u = await createUser(t);
      assertBanned(await me(u.accessToken, `${net}::1`));
      assertBanned(await me(u.accessToken, `${net}:8a2e:370:7334:1`)); // another address of the same /64
      assert.equal((await me(u.accessToken, `2001:db8:${ipSeq.toString(16)}:b::1`)).status, 200, 'the next /64 is not banned');
      const listed = await asAdmin('GET', `/v1/admin/bans?kind=ip&subject=${encodeURIComponent(`${net}::99`)}`);
      assert.equal(listed.status, 200, listed.text);
      assert.deepEqual(listed.body.data.map((b: { id: string }) => b.id), [created.id], 'found by any address of the /64');
      const bad = await asAdmin('POST', '/v1/admin/bans', { kind: 'ip', subject: '2001:db8::/48', seconds: 60, reason: 'testing' });
      assert.equal(bad.status, 400);
      assert.equal(bad.body.code, 'invalid_ban_subject');
    });

    test('a banned address signs up no account and resets no password; a banned user, or anyone but an admin at a banned address, gets no session', async () => {
      const ip = freshIp();
      await ban('ip', ip, 60);
      const from = (address: string) => ({ headers: { 'x-forwarded-for': address } });
      const email = `banned-${randomUUID()}@example.com`;
      assertBanned(await t.api('POST', '/v1/auth/register', { body: { email, password: 'a long enough password' }, ...from(ip) }));
      assert.equal((await t.api('POST', '/v1/auth/register', { body: { email, password: 'a long enough password' }, ...from(freshIp()) })).status, 201, 'from elsewhere');
      assertBanned(await t.api('POST', '/v1/auth/password/forgot', { body: { email }, ...from(ip) }));
      assertBanned(await t.api('POST', '/v1/auth/password/reset', { body: { token: 'x'.repeat(40), password: 'a long enough password' }, ...from(ip) }));

      const u = await createUser(t);
      const login = (who: TestUser, address: string) => t.api('POST', '/v1/auth/login', { body: { email: who.email, password: who.password }, ...from(address) });
      assertBanned(await login(u, ip));
      assert.equal((await login(root, ip)).status, 200, 'an admin still signs in, to lift bans');
      await ban('user', u.id);
      assertBanned(await login(u, freshIp()));
      const wrong = await t.api('POST', '/v1/auth/login', { body: { email: u.email, password: 'not the password' }, ...from(freshIp()) });
      assert.equal(wrong.status, 401, 'a wrong password says only that: a ban is not told to a guesser');
    });

    test('an admin bans an API key: the key is refused, its owner\'s session is not; a user ban refuses both', async () => {
      const u = await createUser(t);
      const key = await t.api('POST', '/v1/api-keys', { token: u.accessToken, body: { name: 'k' } });
      await ban('api_key', key.body.id.toUpperCase());
      assertBanned(await me(key.body.key));
      assert.equal((await me(u.accessToken)).status, 200);
      const v = await createUser(t);
      const vKey = await t.api('POST', '/v1/api-keys', { token: v.accessToken, body: { name: 'k' } });
      const userBan = await ban('user', v.id);
      assertBanned(await me(v.accessToken));
      assertBanned(await me(vKey.body.key));
      const [entry] = await t.services.audit.list({ limit: 1, userId: v.id, action: 'ban.created' });
      assert.equal(entry?.metadata.banId, userBan.id);
    });

    test('list: filters and cursor pages, newest first', async () => {
      const ip = freshIp();
      const ids = [(await ban('ip', ip)).id, (await ban('ip', ip)).id, (await ban('ip', ip)).id].reverse();
      const p1 = await asAdmin('GET', `/v1/admin/bans?subject=${ip}&limit=2`);
      assert.deepEqual(p1.body.data.map((b: { id: string }) => b.id), ids.slice(0, 2));
      const p2 = await asAdmin('GET', `/v1/admin/bans?subject=${ip}&limit=2&cursor=${p1.body.nextCursor}`);
      assert.deepEqual(p2.body.data.map((b: { id: string }) => b.id), ids.slice(2));
      assert.equal(p2.body.nextCursor, null);
      assert.deepEqual((await asAdmin('GET', `/v1/admin/bans?subject=${ip}&kind=user`)).body.data, []);
      const all = await asAdmin('GET', '/v1/admin/bans?kind=ip&limit=100');
      assert.ok(all.body.data.every((b: { kind: string }) => b.kind === 'ip'));
    });

    test('bad input is a 400 problem and bans nothing; unknown ids are 404; no self-ban', async () => {
      const u = await createUser(t);
      const bad = [
        { kind: 'planet', subject: u.id, seconds: 60, reason: 'x' },
        { kind: 'user', subject: u.id, seconds: -5, reason: 'x' },
        { kind: 'user', subject: u.id, seconds: 0, reason: 'x' },
        { kind: 'user', subject: u.id, seconds: 1.5, reason: 'x' },
        { kind: 'user', subject: u.id, seconds: 60 },
        { kind: 'user', subject: u.id, seconds: 60, reason: '' },
        { kind: 'user', subject: u.id, seconds: 60, reason: 'x', extra: 1 },
        { kind: 'user', seconds: 60, reason: 'x' },
      ];
      for (const body of bad) {
        const res = await asAdmin('POST', '/v1/admin/bans', body);
        assert.equal(res.status, 400, JSON.stringify(body));
        assert.equal(res.body.code, 'validation_failed');
        assert.match(res.headers.get('content-type') ?? '', /application\/problem\+json/);
      }
      for (const [kind, subject] of [['user', 'not-a-uuid'], ['api_key', '1.2.3.4'], ['ip', 'localhost'], ['ip', u.id]]) {
        const res = await asAdmin('POST', '/v1/admin/bans', { kind, subject, seconds: 60, reason: 'x' });
        assert.equal(res.status, 400, `${kind} ${subject}`);
        assert.equal(res.body.code, 'invalid_ban_subject');
      }
      for (const [kind, code] of [['user', 'user_not_found'], ['api_key', 'api_key_not_found']]) {
        const res = await asAdmin('POST', '/v1/admin/bans', { kind, subject: randomUUID(), seconds: 60, reason: 'x' });
        assert.equal(res.status, 404, kind);
        assert.equal(res.body.code, code);
      }
      const malformed = await t.api('POST', '/v1/admin/bans', { token: root.accessToken, raw: '{"kind": "user",' });
      assert.equal(malformed.status, 400);
      assert.equal(malformed.body.code, 'malformed_json');
      assert.deepEqual((await asAdmin('GET', `/v1/admin/bans?subject=${u.id}`)).body.data, []);
      assert.equal((await me(u.accessToken)).status, 200);

      for (const q of ['kind=planet', 'active=yes', 'limit=0', 'cursor=zzz']) {
        const res = await asAdmin('GET', `/v1/admin/bans?${q}`);
        assert.equal(res.status, 400, q);
        assert.equal(res.body.code, 'validation_failed');
      }
      const unknown = await asAdmin('DELETE', `/v1/admin/bans/${randomUUID()}`);
      assert.equal(unknown.status, 404);
      assert.equal(unknown.body.code, 'ban_not_found');
      assert.equal((await asAdmin('DELETE', '/v1/admin/bans/42')).status, 400);
      const self = await asAdmin('POST', '/v1/admin/bans', { kind: 'user', subject: root.id, seconds: 60, reason: 'oops' });
      assert.equal(self.status, 409);
      assert.equal(self.body.code, 'cannot_ban_self');
    });

    test('non-admins get 403 admin_required, keys api_key_not_allowed, anonymous callers 401', async () => {
      const b = await ban('ip', freshIp());
      const routes: Array<[string, string, unknown]> = [
        ['GET', '/v1/admin/bans', undefined],
        ['POST', '/v1/admin/bans', { kind: 'user', subject: root.id, seconds: 60, reason: 'x' }],
        ['DELETE', `/v1/admin/bans/${b.id}`, undefined],
      ];
      for (const [method, path, body] of routes) {
        // A user per route: three requests each stay within the user limit of this file.
        const u = await createUser(t);
        const key = await t.api('POST', '/v1/api-keys', { token: u.accessToken, body: { name: 'k' } });
        const asUser = await t.api(method, path, { token: u.accessToken, body });
        assert.equal(asUser.status, 403, `${method} ${path}`);
        assert.equal(asUser.body.code, 'admin_required');
        const asKey = await t.api(method, path, { token: key.body.key, body });
        assert.equal(asKey.status, 403);
        assert.equal(asKey.body.code, 'api_key_not_allowed');
        assert.equal((await t.api(method, path, { body })).status, 401);
      }
      assert.equal((await asAdmin('GET', `/v1/admin/bans?subject=${b.subject}&active=true`)).body.data.length, 1, 'still in force');
    });

    test('the endpoints are in the OpenAPI document', async () => {
      const doc = (await t.api('GET', '/openapi.json')).body;
      assert.ok(doc.paths['/v1/admin/bans'].get);
      assert.ok(doc.paths['/v1/admin/bans'].post);
      assert.ok(doc.paths['/v1/admin/bans/{id}'].delete);
    });

    // Last in this app: it purges as if 90 days and a few hours had passed, which ends most bans the tests above set.
    test('bans that ended over RATE_LIMIT_BAN_HISTORY_DAYS (90) ago are purged by limits.purge-bans; their audit entries stay', async () => {
      const u = await createUser(t);
      const short = await ban('ip', freshIp(), 600);
      const lifted = await ban('ip', freshIp(), 300 * 86_400);
      assert.equal((await asAdmin('DELETE', `/v1/admin/bans/${lifted.id}`)).status, 200);
      const long = await ban('user', u.id, 100 * 86_400);
      const schedules = (await asAdmin('GET', '/v1/admin/schedules')).body.data;
      assert.equal(schedules.find((d: { name: string }) => d.name === 'limits.purge-bans')?.cron, '29 4 * * *', 'the daily purge is scheduled');
      const later = new Date(Date.now() + 90 * 86_400_000 + 6 * 3600_000);
      assert.ok((await t.services.limits.purgeEndedBans(later)) >= 2);
      const listed = (await asAdmin('GET', '/v1/admin/bans?limit=100')).body.data.map((b: { id: string }) => b.id);
      assert.ok(!listed.includes(short.id), 'expired 90 days before');
      assert.ok(!listed.includes(lifted.id), 'lifted 90 days before, though it would have run 300 days');
      assert.ok(listed.includes(long.id), 'still in force then');
      assert.equal(await t.services.limits.purgeEndedBans(), 0, 'nothing ended 90 days before now');
      const audit = await t.services.audit.list({ limit: 100, action: 'ban.created' });
      assert.ok(audit.some((e) => (e.metadata as { banId?: string }).banId === short.id), 'the audit log keeps it');
    });
  });
}

// Two instances sharing PostgreSQL and Redis: a ban set or lifted on one holds on the other at once.
describe('bans across instances [postgres]', { skip: !process.env.DATABASE_URL || !process.env.REDIS_URL }, () => {
  let a: TestApp;
  let b: TestApp;
  let root: TestUser;
  before(async () => {
    a = await startApp({ backend: 'postgres', env: ENV });
    b = await startApp({ sharedWith: a, env: ENV });
    root = await createUser(a, { admin: true });
  });
  after(async () => {
    await b?.close();
    await a?.close();
  });

  test('a ban set on A refuses the user on B; lifted on A, B lets them in again', async () => {
    const u = await createUser(a);
    assert.equal((await b.api('GET', '/v1/users/me', { token: u.accessToken })).status, 200, 'B has loaded its bans');
    const set = await a.api('POST', '/v1/admin/bans', { token: root.accessToken, body: { kind: 'user', subject: u.id, seconds: 600, reason: 'x' } });
    assert.equal(set.status, 201);
    await eventually(async () => assert.equal((await b.api('GET', '/v1/users/me', { token: u.accessToken })).body.code, 'banned'), 2_000);
    assert.equal((await a.api('DELETE', `/v1/admin/bans/${set.body.id}`, { token: root.accessToken })).status, 200);
    await eventually(async () => assert.equal((await b.api('GET', '/v1/users/me', { token: u.accessToken })).status, 200), 2_000);
  });

  test('violations on both instances add up to one ban, enforced on both', async () => {
    const u = await createUser(a);
    const statuses: number[] = [];
    for (let i = 0; i < 6; i++) statuses.push((await (i % 2 ? b : a).api('GET', '/v1/users/me', { token: u.accessToken })).status);
    assert.deepEqual(statuses, [200, 200, 200, 429, 429, 429]);
    for (const t of [a, b]) await eventually(async () => assert.equal((await t.api('GET', '/v1/users/me', { token: u.accessToken })).body.code, 'banned'), 2_000);
    const list = await a.api('GET', `/v1/admin/bans?subject=${u.id}`, { token: root.accessToken });
    assert.equal(list.body.data.length, 1);
  });

  test('an instance started after a ban loads it from the database', async () => {
    const u = await createUser(a);
    const set = await a.api('POST', '/v1/admin/bans', { token: root.accessToken, body: { kind: 'user', subject: u.id, seconds: 600, reason: 'x' } });
    assert.equal(set.status, 201);
    const c = await startApp({ sharedWith: a, env: ENV });
    try {
      assert.equal((await c.api('GET', '/v1/users/me', { token: u.accessToken })).body.code, 'banned');
    } finally {
      await c.close();
    }
  });
});
