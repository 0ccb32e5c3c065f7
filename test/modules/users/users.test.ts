import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { eq } from 'drizzle-orm';
import { sessions } from '../../../src/modules/auth/schema.ts';
import { backends, startApp, type TestApp } from '../../support/app.ts';
import { createUser, uniqueEmail } from '../../support/factories.ts';

const DEFAULTS = {
  theme: 'system',
  timezone: 'UTC',
  locale: 'en',
  defaultModel: null,
  notifications: { email: true, push: true, sms: true, slack: true, inApp: true, digest: 'off', digestTime: '09:00', digestDay: 'monday', quietHours: null },
  privacy: { saveHistory: true, allowTraining: false, shareUsageAnalytics: false },
};

for (const backend of backends()) {
  describe(`users: preferences [${backend}]`, () => {
    let t: TestApp;
    before(async () => {
      t = await startApp({ backend });
    });
    after(() => t.close());

    test('defaults, then patches merged field by field', async () => {
      const u = await createUser(t);
      const initial = await t.api('GET', '/v1/users/me/preferences', { token: u.accessToken });
      assert.equal(initial.status, 200);
      assert.deepEqual(initial.body, DEFAULTS);

      const p1 = await t.api('PATCH', '/v1/users/me/preferences', { token: u.accessToken, body: { theme: 'dark', notifications: { email: false } } });
      assert.equal(p1.status, 200);
      const p2 = await t.api('PATCH', '/v1/users/me/preferences', {
        token: u.accessToken,
        body: { timezone: 'Europe/Paris', locale: 'fr-FR', notifications: { digest: 'weekly' }, privacy: { allowTraining: true } },
      });
      const expected = {
        ...DEFAULTS,
        theme: 'dark',
        timezone: 'Europe/Paris',
        locale: 'fr-FR',
        notifications: { ...DEFAULTS.notifications, email: false, digest: 'weekly' },
        privacy: { ...DEFAULTS.privacy, allowTraining: true },
      };
      assert.deepEqual(p2.body, expected);
      assert.deepEqual((await t.api('GET', '/v1/users/me/preferences', { token: u.accessToken })).body, expected);
      const cleared = await t.api('PATCH', '/v1/users/me/preferences', { token: u.accessToken, body: { defaultModel: 'openai:gpt-4o' } });
      assert.equal(cleared.body.defaultModel, 'openai:gpt-4o');
      assert.equal((await t.api('PATCH', '/v1/users/me/preferences', { token: u.accessToken, body: { defaultModel: null } })).body.defaultModel, null);
    });

    test('invalid patches are 400 and change nothing', async () => {
      const u = await createUser(t);
      await t.api('PATCH', '/v1/users/me/preferences', { token: u.accessToken, body: { theme: 'light', privacy: { saveHistory: false } } });
      const before = (await t.api('GET', '/v1/users/me/preferences', { token: u.accessToken })).body;
      const bad: unknown[] = [
        { timezone: 'Mars/Olympus_Mons' },
        // Intl takes a bare offset; it is no IANA zone.
        { timezone: '+05:30' },
        { timezone: '-23:59' },
        { timezone: 'Europe/Paris', locale: 'not a locale!' },
        { theme: 'dark', colour: 'red' },
        { notifications: { fax: true } },
        { notifications: { quietHours: { start: '25:00', end: '07:00' } } },
        { notifications: { digestDay: 'someday' } },
        { privacy: { saveHistory: 'no' } },
        { theme: 'neon' },
        { notifications: null },
        // A model is named as in a chat request: provider:model.
        { defaultModel: 'gpt-4o' },
        ['theme', 'dark'],
      ];
      for (const body of bad) {
        const res = await t.api('PATCH', '/v1/users/me/preferences', { token: u.accessToken, body });
        assert.equal(res.status, 400, JSON.stringify(body));
        assert.equal(res.body.code, 'validation_failed');
      }
      const malformed = await t.api('PATCH', '/v1/users/me/preferences', { token: u.accessToken, raw: '{"theme":' });
      assert.equal(malformed.status, 400);
      assert.deepEqual((await t.api('GET', '/v1/users/me/preferences', { token: u.accessToken })).body, before);
    });

    test('concurrent patches to different fields all land', async () => {
      const u = await createUser(t);
      const patches = [
        { theme: 'dark' },
        { timezone: 'Asia/Tokyo' },
        { locale: 'de' },
        { defaultModel: 'ollama:llama3' },
        { notifications: { email: false } },
        { notifications: { push: false } },
        { notifications: { inApp: false } },
        { notifications: { digest: 'daily' } },
        { privacy: { saveHistory: false } },
        { privacy: { allowTraining: true } },
        { privacy: { shareUsageAnalytics: true } },
      ];
      const results = await Promise.all(patches.map((body) => t.api('PATCH', '/v1/users/me/preferences', { token: u.accessToken, body })));
      for (const r of results) assert.equal(r.status, 200, r.text);
      const final = (await t.api('GET', '/v1/users/me/preferences', { token: u.accessToken })).body;
      assert.deepEqual(final, {
        theme: 'dark',
        timezone: 'Asia/Tokyo',
        locale: 'de',
        defaultModel: 'ollama:llama3',
        notifications: { ...DEFAULTS.notifications, email: false, push: false, inApp: false, digest: 'daily' },
        privacy: { saveHistory: false, allowTraining: true, shareUsageAnalytics: true },
      });
    });

    test('API keys need profile:read to read and profile:write to change preferences', async () => {
      const u = await createUser(t);
      const reader = await t.api('POST', '/v1/api-keys', { token: u.accessToken, body: { name: 'r', scopes: ['profile:read'] } });
      assert.equal((await t.api('GET', '/v1/users/me/preferences', { token: reader.body.key })).status, 200);
      const denied = await t.api('PATCH', '/v1/users/me/preferences', { token: reader.body.key, body: { theme: 'dark' } });
      assert.equal(denied.status, 403);
      assert.equal(denied.body.code, 'insufficient_scope');
      assert.equal((await t.api('GET', '/v1/users/me/preferences')).status, 401);
    });
  });

  describe(`users: deleting your account [${backend}]`, () => {
    let t: TestApp;
    before(async () => {
      t = await startApp({ backend, env: { AUTH_RATE_LIMIT_PER_ACCOUNT: '3' } });
    });
    after(() => t.close());

    /** A user with no password, signed in as through OAuth. */
    async function oauthUser() {
      const user = await t.services.users.create({ email: uniqueEmail('oauth'), passwordHash: null, emailVerified: true });
      return t.services.auth.signIn(user, 'oauth:test', {});
    }

    test('with the right password: gone, and every token and key stops working', async () => {
      const u = await createUser(t);
      const key = await t.api('POST', '/v1/api-keys', { token: u.accessToken, body: { name: 'k' } });
      const other = await t.api('POST', '/v1/auth/login', { body: { email: u.email, password: u.password } });
      const del = await t.api('DELETE', '/v1/users/me', { token: u.accessToken, body: { password: u.password } });
      assert.equal(del.status, 204);
      for (const token of [u.accessToken, other.body.accessToken, key.body.key]) {
        assert.equal((await t.api('GET', '/v1/users/me', { token })).status, 401);
      }
      assert.equal((await t.api('POST', '/v1/auth/refresh', { body: { refreshToken: u.refreshToken } })).status, 401);
      assert.equal((await t.api('POST', '/v1/auth/login', { body: { email: u.email, password: u.password } })).status, 401);
      assert.equal(await t.services.users.byId(u.id), undefined);
      const audit = await t.services.audit.list({ limit: 5, userId: u.id, action: 'user.deleted' });
      assert.equal(audit.length, 1);
      // The address is free again.
      assert.equal((await t.api('POST', '/v1/auth/register', { body: { email: u.email, password: 'a new password' } })).status, 201);
    });

    test('the same account deleted by three requests at once: one 204 and one audit entry, the others 404', async () => {
      const u = await createUser(t);
      const res = await Promise.all([1, 2, 3].map(() => t.api('DELETE', '/v1/users/me', { token: u.accessToken, body: { password: u.password } })));
      const statuses = res.map((r) => r.status).sort();
      assert.deepEqual(statuses, [204, 404, 404], res.map((r) => r.text).join(' | '));
      assert.ok(res.filter((r) => r.status === 404).every((r) => r.body.code === 'user_not_found'));
      assert.equal((await t.services.audit.list({ limit: 5, userId: u.id, action: 'user.deleted' })).length, 1);
    });

    test('the only administrator who can sign in cannot delete their account; with another one, they can', async () => {
      const only = await createUser(t, { admin: true });
      const refused = await t.api('DELETE', '/v1/users/me', { token: only.accessToken, body: { password: only.password } });
      assert.equal(refused.status, 409, refused.text);
      assert.equal(refused.body.code, 'last_admin');
      assert.ok(await t.services.users.byId(only.id), 'nothing deleted');
      // A disabled administrator does not count: they cannot sign in to run anything.
      const disabled = await createUser(t, { admin: true });
      await t.services.users.setDisabled(disabled.id, true);
      assert.equal((await t.api('DELETE', '/v1/users/me', { token: only.accessToken, body: { password: only.password } })).status, 409);
      const second = await createUser(t, { admin: true });
      assert.equal((await t.api('DELETE', '/v1/users/me', { token: only.accessToken, body: { password: only.password } })).status, 204);
      assert.equal((await t.api('DELETE', '/v1/users/me', { token: second.accessToken, body: { password: second.password } })).status, 409, 'now the last one');
    });

    test('the last two administrators deleting their accounts at once: one goes, the other is the last (409), never a 500', async () => {
      // Only these two can sign in: every other administrator of this app is disabled for the test.
      const others = (await t.services.users.list({ limit: 100, role: 'admin' })).filter((u) => !u.disabledAt);
      for (const o of others) await t.services.users.setDisabled(o.id, true);
      try {
        for (let round = 0; round < 4; round++) {
          const pair = [await createUser(t, { admin: true }), await createUser(t, { admin: true })];
          const res = await Promise.all(pair.map((a) => t.api('DELETE', '/v1/users/me', { token: a.accessToken, body: { password: a.password } })));
          assert.deepEqual(res.map((r) => r.status).sort(), [204, 409], res.map((r) => r.text).join(' | '));
          const kept = pair[res.findIndex((r) => r.status === 409)]!;
          assert.equal(res.find((r) => r.status === 409)!.body.code, 'last_admin');
          await t.services.users.setDisabled(kept.id, true);
        }
      } finally {
        for (const o of others) await t.services.users.setDisabled(o.id, false);
      }
    });

    test('a wrong or missing password is refused and deletes nothing', async () => {
      const u = await createUser(t);
      const wrong = await t.api('DELETE', '/v1/users/me', { token: u.accessToken, body: { password: 'not my password' } });
      assert.equal(wrong.status, 403);
      assert.equal(wrong.body.code, 'invalid_password');
      for (const opts of [{}, { body: {} }]) {
        const missing = await t.api('DELETE', '/v1/users/me', { token: u.accessToken, ...opts });
        assert.equal(missing.status, 403);
        assert.equal(missing.body.code, 'reauthentication_required');
      }
      const extra = await t.api('DELETE', '/v1/users/me', { token: u.accessToken, body: { password: u.password, force: true } });
      assert.equal(extra.status, 400);
      assert.equal((await t.api('GET', '/v1/users/me', { token: u.accessToken })).status, 200);
    });

    test('password guesses count against the account\'s sign-in lock', async () => {
      const u = await createUser(t);
      for (let i = 0; i < 3; i++) {
        assert.equal((await t.api('DELETE', '/v1/users/me', { token: u.accessToken, body: { password: `guess ${i}` } })).status, 403);
      }
      const locked = await t.api('DELETE', '/v1/users/me', { token: u.accessToken, body: { password: u.password } });
      assert.equal(locked.status, 429);
      assert.equal(locked.body.code, 'too_many_attempts');
      assert.equal((await t.api('GET', '/v1/users/me', { token: u.accessToken })).status, 200);
    });

    test('an API key cannot delete the account', async () => {
      const u = await createUser(t);
      const key = await t.api('POST', '/v1/api-keys', { token: u.accessToken, body: { name: 'k' } });
      const res = await t.api('DELETE', '/v1/users/me', { token: key.body.key, body: { password: u.password } });
      assert.equal(res.status, 403);
      assert.equal(res.body.code, 'api_key_not_allowed');
      assert.ok(await t.services.users.byId(u.id));
    });

    test('a password-less user needs a session opened in the last 10 minutes', async () => {
      const stale = await oauthUser();
      await t.deps.db.update(sessions).set({ createdAt: new Date(Date.now() - 11 * 60_000) }).where(eq(sessions.id, stale.sessionId));
      const refused = await t.api('DELETE', '/v1/users/me', { token: stale.accessToken });
      assert.equal(refused.status, 403);
      assert.equal(refused.body.code, 'reauthentication_required');
      assert.ok(await t.services.users.byId(stale.user.id));

      const fresh = await oauthUser();
      const del = await t.api('DELETE', '/v1/users/me', { token: fresh.accessToken });
      assert.equal(del.status, 204);
      assert.equal((await t.api('GET', '/v1/users/me', { token: fresh.accessToken })).status, 401);
      const [entry] = await t.services.audit.list({ limit: 1, userId: fresh.user.id, action: 'user.deleted' });
      assert.equal(entry?.metadata.reauthenticatedWith, 'recent_session');
    });
  });
}
