import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { backends, startApp, type TestApp } from '../../support/app.ts';
import { createUser, type TestUser } from '../../support/factories.ts';
import { connectAs } from '../../support/ws.ts';

/** Sockets check their credential again every 150 ms here (30 s by default). */
for (const backend of backends()) {
  describe(`realtime: a socket's credential keeps being checked [${backend}]`, () => {
    let t: TestApp;
    let root: TestUser;
    before(async () => {
      t = await startApp({ backend, env: { WS_REAUTH_MS: '150' } });
      root = await createUser(t, { admin: true });
    });
    after(() => t.close());

    test('a socket outlives its checks while the session lasts, and closes with 4401 once the session is logged out', async () => {
      const u = await createUser(t);
      const c = await connectAs(t, u.accessToken);
      await new Promise((r) => setTimeout(r, 500));
      c.send({ type: 'ping' });
      assert.deepEqual(await c.next(), { type: 'pong' }, 'still open after several checks');
      assert.equal((await t.api('POST', '/v1/auth/logout', { body: { refreshToken: u.refreshToken } })).status, 204);
      assert.deepEqual(await c.closed, { code: 4401, reason: 'session_revoked' });
    });

    test('deleting the API key a socket was opened with closes it with 4401', async () => {
      const u = await createUser(t);
      const created = await t.api('POST', '/v1/api-keys', { token: u.accessToken, body: { name: 'ws' } });
      const c = await connectAs(t, created.body.key);
      assert.equal((await t.api('DELETE', `/v1/api-keys/${created.body.id}`, { token: u.accessToken })).status, 204);
      assert.deepEqual(await c.closed, { code: 4401, reason: 'invalid_api_key' });
    });

    test('a ban closes the socket with 4403; an account disabled by an admin closes with 4401', async () => {
      const banned = await createUser(t);
      const b = await connectAs(t, banned.accessToken);
      const ban = await t.api('POST', '/v1/admin/bans', { token: root.accessToken, body: { kind: 'user', subject: banned.id, seconds: 60, reason: 'testing' } });
      assert.equal(ban.status, 201, JSON.stringify(ban.body));
      assert.deepEqual(await b.closed, { code: 4403, reason: 'banned' });

      const disabled = await createUser(t);
      const d = await connectAs(t, disabled.accessToken);
      const res = await t.api('POST', `/v1/admin/users/${disabled.id}/disable`, { token: root.accessToken });
      assert.ok(res.status < 300, JSON.stringify(res.body));
      assert.equal((await d.closed).code, 4401);
    });

    test('a refreshed token of the same user renews the socket; another user\'s token or a bad one is refused and the socket stays', async () => {
      const u = await createUser(t);
      const other = await createUser(t);
      const c = await connectAs(t, u.accessToken);
      c.send({ type: 'subscribe', topic: 'user' });
      assert.deepEqual(await c.next(), { type: 'subscribed', topic: 'user' });

      c.send({ type: 'auth', token: other.accessToken });
      assert.equal((await c.next()).code, 'different_credential');
      c.send({ type: 'auth', token: 'not-a-token' });
      assert.equal((await c.next()).code, 'invalid_token');

      // A second login is a second session: renewing onto it, then ending the first, keeps the socket.
      const login = await t.api('POST', '/v1/auth/login', { body: { email: u.email, password: u.password } });
      c.send({ type: 'auth', token: login.body.accessToken });
      assert.deepEqual(await c.next(), { type: 'ready', userId: u.id });
      assert.equal((await t.api('POST', '/v1/auth/logout', { body: { refreshToken: u.refreshToken } })).status, 204);
      await new Promise((r) => setTimeout(r, 500));
      c.send({ type: 'ping' });
      assert.deepEqual(await c.next(), { type: 'pong' }, 'checked against the renewed credential');
      assert.equal((await t.api('PATCH', '/v1/users/me', { token: u.accessToken, body: { name: 'Renamed' } })).status, 401, 'the first session really ended');
      await c.close();
    });
  });
}

for (const backend of backends()) {
  describe(`realtime: a subscribe that looks something up checks the credential, as the same read over HTTP would [${backend}]`, () => {
    // The periodic check is WS_REAUTH_MS (30 s) away here: only the subscribe itself can notice.
    let t: TestApp;
    let root: TestUser;
    before(async () => {
      t = await startApp({ backend });
      root = await createUser(t, { admin: true });
    });
    after(() => t.close());

    const conversation = async (u: TestUser) => (await t.services.conversations.create(u.id, { title: 'ws' })).id;

    test('once the session is logged out, or the account disabled by an admin, such a subscribe closes the socket instead of subscribing', async () => {
      const u = await createUser(t);
      const conv = await conversation(u);
      const c = await connectAs(t, u.accessToken);
      assert.equal((await t.api('POST', '/v1/auth/logout', { body: { refreshToken: u.refreshToken } })).status, 204);
      c.send({ type: 'subscribe', topic: `conversation:${conv}` });
      assert.deepEqual(await c.closed, { code: 4401, reason: 'session_revoked' });
      assert.deepEqual(c.frames, [], 'not subscribed');

      const disabled = await createUser(t);
      const key = await t.api('POST', '/v1/api-keys', { token: disabled.accessToken, body: { name: 'ws' } });
      const d = await connectAs(t, key.body.key);
      const own = await conversation(disabled);
      assert.equal((await t.api('POST', `/v1/admin/users/${disabled.id}/disable`, { token: root.accessToken })).status, 200);
      d.send({ type: 'subscribe', topic: `conversation:${own}` });
      assert.equal((await d.closed).code, 4401);
      assert.deepEqual(d.frames, [], 'not subscribed');
    });
  });
}
