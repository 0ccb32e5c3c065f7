import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { backends, startApp, type TestApp } from '../support/app.ts';
import { createUser, type TestUser } from '../support/factories.ts';

/**
 * User B tries every endpoint on user A's things. Each module adds rows here
 * for its own routes: B must get 404 (or 403) every time, and A's data must be
 * exactly as it was afterwards.
 */
interface Fixture {
  a: TestUser & { apiKey: string; apiKeyId: string; secondSessionId: string };
  b: TestUser & { apiKey: string };
}

interface Case {
  name: string;
  method: 'GET' | 'POST' | 'PATCH' | 'PUT' | 'DELETE';
  path: (f: Fixture) => string;
  body?: (f: Fixture) => unknown;
  /** B's credential: a session (default) or an API key with no scope limits. */
  as?: 'session' | 'api_key';
  status: 403 | 404;
  code: string;
}

const ADMIN_ROUTES: Array<Pick<Case, 'name' | 'method' | 'path' | 'body'>> = [
  { name: 'list users', method: 'GET', path: () => '/v1/admin/users' },
  { name: "read A's account", method: 'GET', path: (f) => `/v1/admin/users/${f.a.id}` },
  { name: 'disable A', method: 'POST', path: (f) => `/v1/admin/users/${f.a.id}/disable` },
  { name: 'enable A', method: 'POST', path: (f) => `/v1/admin/users/${f.a.id}/enable` },
  { name: 'make A an admin', method: 'PATCH', path: (f) => `/v1/admin/users/${f.a.id}`, body: () => ({ role: 'admin' }) },
  { name: 'make themselves an admin', method: 'PATCH', path: (f) => `/v1/admin/users/${f.b.id}`, body: () => ({ role: 'admin' }) },
  { name: "read A's audit trail", method: 'GET', path: (f) => `/v1/admin/audit?userId=${f.a.id}` },
  { name: "read A's mail", method: 'GET', path: (f) => `/v1/admin/outbox?to=${encodeURIComponent(f.a.email)}` },
];

const CASES: Case[] = [
  // auth
  { name: "revoke A's current session", method: 'DELETE', path: (f) => `/v1/auth/sessions/${f.a.sessionId}`, status: 404, code: 'session_not_found' },
  { name: "revoke A's other session", method: 'DELETE', path: (f) => `/v1/auth/sessions/${f.a.secondSessionId}`, status: 404, code: 'session_not_found' },
  // api-keys
  { name: "read A's API key", method: 'GET', path: (f) => `/v1/api-keys/${f.a.apiKeyId}`, status: 404, code: 'api_key_not_found' },
  { name: "delete A's API key", method: 'DELETE', path: (f) => `/v1/api-keys/${f.a.apiKeyId}`, status: 404, code: 'api_key_not_found' },
  { name: "delete A's API key with a key", method: 'DELETE', path: (f) => `/v1/api-keys/${f.a.apiKeyId}`, as: 'api_key', status: 403, code: 'api_key_not_allowed' },
  // admin
  ...ADMIN_ROUTES.map((r): Case => ({ ...r, name: `admin: ${r.name}`, status: 403, code: 'admin_required' })),
  ...ADMIN_ROUTES.map((r): Case => ({ ...r, name: `admin with a key: ${r.name}`, as: 'api_key', status: 403, code: 'api_key_not_allowed' })),
];

/** Lists B can read: none of A's ids may appear in them. */
const LIST_CASES: Array<{ name: string; path: string; idsOfA: (f: Fixture) => string[] }> = [
  { name: 'sessions', path: '/v1/auth/sessions', idsOfA: (f) => [f.a.sessionId, f.a.secondSessionId] },
  { name: 'API keys', path: '/v1/api-keys', idsOfA: (f) => [f.a.apiKeyId] },
];

for (const backend of backends()) {
  describe(`cross-user access [${backend}]`, () => {
    let t: TestApp;
    let f: Fixture;

    /** Everything of A's that B's attempts could change, read as A. */
    async function snapshotOfA() {
      const get = async (path: string) => {
        const res = await t.api('GET', path, { token: f.a.accessToken });
        assert.equal(res.status, 200, `${path} as A: ${res.text}`);
        return res.body;
      };
      return {
        me: await get('/v1/users/me'),
        preferences: await get('/v1/users/me/preferences'),
        sessions: (await get('/v1/auth/sessions')).data.map((s: { id: string }) => s.id).sort(),
        apiKeys: (await get('/v1/api-keys')).data.map((k: { id: string; name: string; scopes: string[] }) => [k.id, k.name, k.scopes]),
      };
    }

    before(async () => {
      t = await startApp({ backend });
      const a = await createUser(t, { name: 'Alice' });
      const b = await createUser(t, { name: 'Bob' });
      const aKey = await t.api('POST', '/v1/api-keys', { token: a.accessToken, body: { name: 'alice key' } });
      const bKey = await t.api('POST', '/v1/api-keys', { token: b.accessToken, body: { name: 'bob key' } });
      const second = await t.api('POST', '/v1/auth/login', { body: { email: a.email, password: a.password } });
      assert.equal(second.status, 200, second.text);
      await t.api('PATCH', '/v1/users/me/preferences', { token: a.accessToken, body: { theme: 'dark' } });
      await t.deps.mailer.send({ to: a.email, subject: 'for Alice', text: 'private' });
      f = {
        a: { ...a, apiKey: aKey.body.key, apiKeyId: aKey.body.id, secondSessionId: second.body.sessionId },
        b: { ...b, apiKey: bKey.body.key },
      };
    });
    after(() => t.close());

    describe('B is refused on A\'s things', () => {
      let before_: Awaited<ReturnType<typeof snapshotOfA>>;
      before(async () => {
        before_ = await snapshotOfA();
      });

      for (const c of CASES) {
        test(`${c.method} ${c.name} → ${c.status} ${c.code}`, async () => {
          const token = c.as === 'api_key' ? f.b.apiKey : f.b.accessToken;
          const res = await t.api(c.method, c.path(f), { token, body: c.body?.(f) });
          assert.equal(res.status, c.status, res.text);
          assert.equal(res.body.code, c.code);
        });
      }

      for (const l of LIST_CASES) {
        test(`B's list of ${l.name} holds none of A's`, async () => {
          const res = await t.api('GET', l.path, { token: f.b.accessToken });
          assert.equal(res.status, 200);
          const ids = res.body.data.map((r: { id: string }) => r.id);
          assert.ok(ids.length > 0, 'B has some of their own');
          for (const id of l.idsOfA(f)) assert.ok(!ids.includes(id));
        });
      }

      test("A's data is unchanged and A's credentials still work", async () => {
        assert.deepEqual(await snapshotOfA(), before_);
        assert.equal(before_.me.role, 'user');
        assert.equal(before_.me.disabled, false);
        assert.equal((await t.api('GET', '/v1/users/me', { token: f.a.apiKey })).status, 200);
        assert.equal((await t.services.users.byId(f.b.id))!.role, 'user', 'B did not promote themselves');
      });
    });
  });
}
