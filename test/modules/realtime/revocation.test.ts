import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import type { AddressInfo } from 'node:net';
import { WebSocket, WebSocketServer } from 'ws';
import { acceptConnection } from '../../../src/modules/realtime/connection.ts';
import { RECHECK, userChannel } from '../../../src/modules/realtime/relay.ts';
import { backends, startApp, type TestApp } from '../../support/app.ts';
import { eventually } from '../../support/eventually.ts';
import { createUser, type TestUser } from '../../support/factories.ts';
import { tokenIn, waitForMails } from '../../support/mail.ts';
import { connectAs, subscribe, type WsClient } from '../../support/ws.ts';

/**
 * The periodic check is 10 minutes away: only the change itself can close a socket in these tests. A refresh token
 * presented again after it was rotated is a reuse at once. A socket may take a minute to authenticate: one test
 * revokes the credential, and waits for its notice, while the socket's first check is under way.
 */
const env = { WS_REAUTH_MS: '600000', WS_AUTH_TIMEOUT_MS: '60000', REFRESH_REUSE_GRACE_SECONDS: '0', TRUST_PROXY: 'loopback' };

/** A socket from this client address (X-Forwarded-For, from the loopback proxy TRUST_PROXY trusts), subscribed to `user`. */
async function openFrom(t: TestApp, token: string, address: string): Promise<WsClient> {
  const c = await connectAs(t, token, { headers: { 'x-forwarded-for': address } });
  assert.equal((await subscribe(c, 'user')).type, 'subscribed');
  return c;
}

/** A socket on this credential, subscribed to its user's `user` topic. */
async function open(t: TestApp, token: string): Promise<WsClient> {
  const c = await connectAs(t, token);
  assert.equal((await subscribe(c, 'user')).type, 'subscribed');
  return c;
}

/**
 * How the socket closed, once it has: within 20 s, far below WS_REAUTH_MS. The notice goes through the outbox, a
 * job, the bus and the relay, which on a loaded 2-core CI machine took more than eventually's default 5 s.
 */
async function closes(c: WsClient): Promise<{ code: number; reason: string }> {
  await eventually(() => assert.equal(c.ws.readyState, WebSocket.CLOSED, 'the socket is still open'), 20_000);
  return c.closed;
}

/**
 * The sockets are open and still get their user's events. Called once another socket of the same user on the same
 * instance has closed: the check that closed it was queued on these too, before this ping, so their pong comes
 * after their own check, which let them be.
 */
async function stillServed(t: TestApp, userId: string, ...sockets: WsClient[]): Promise<void> {
  for (const s of sockets) {
    s.send({ type: 'ping' });
    assert.deepEqual(await s.next((f) => f.type === 'pong'), { type: 'pong' });
  }
  const marker = randomUUID();
  await t.deps.bus.publish('user.updated', { userId, fields: [marker] });
  for (const s of sockets) await s.next((f) => f.type === 'event' && f.event.payload.fields?.[0] === marker);
}

async function login(t: TestApp, u: TestUser) {
  const res = await t.api('POST', '/v1/auth/login', { body: { email: u.email, password: u.password } });
  assert.equal(res.status, 200, JSON.stringify(res.body));
  return res.body as { accessToken: string; refreshToken: string; sessionId: string };
}

async function apiKey(t: TestApp, u: TestUser) {
  const res = await t.api('POST', '/v1/api-keys', { token: u.accessToken, body: { name: 'ws' } });
  assert.equal(res.status, 201, JSON.stringify(res.body));
  return res.body as { id: string; key: string };
}

for (const backend of backends()) {
  describe(`realtime: access ends at once when a credential does [${backend}]`, () => {
    let t: TestApp;
    let root: TestUser;
    before(async () => {
      t = await startApp({ backend, env });
      root = await createUser(t, { admin: true });
    });
    after(() => t.close());

    test('signing out closes the socket on that session with 4401; one on another session stays and still gets events', async () => {
      const u = await createUser(t);
      const other = await login(t, u);
      const ended = await open(t, u.accessToken);
      const kept = await open(t, other.accessToken);
      assert.equal((await t.api('POST', '/v1/auth/logout', { body: { refreshToken: u.refreshToken } })).status, 204);
      assert.deepEqual(await closes(ended), { code: 4401, reason: 'session_revoked' });
      await stillServed(t, u.id, kept);
      await kept.close();
    });

    test('a session revoked from the sessions list closes its socket; the revoking session\'s stays', async () => {
      const u = await createUser(t);
      const other = await login(t, u);
      const ended = await open(t, u.accessToken);
      const kept = await open(t, other.accessToken);
      assert.equal((await t.api('DELETE', `/v1/auth/sessions/${u.sessionId}`, { token: other.accessToken })).status, 204);
      assert.deepEqual(await closes(ended), { code: 4401, reason: 'session_revoked' });
      await stillServed(t, u.id, kept);
      await kept.close();
    });

    test('signing out everywhere closes the socket of every session; one on an API key stays', async () => {
      const u = await createUser(t);
      const other = await login(t, u);
      const key = await apiKey(t, u);
      const first = await open(t, u.accessToken);
      const second = await open(t, other.accessToken);
      const kept = await open(t, key.key);
      assert.equal((await t.api('POST', '/v1/auth/logout-all', { token: u.accessToken })).status, 200);
      for (const ended of [first, second]) assert.deepEqual(await closes(ended), { code: 4401, reason: 'session_revoked' });
      await stillServed(t, u.id, kept);
      await kept.close();
    });

    test("a password change closes the sockets of the other sessions; the changing session's stays", async () => {
      const u = await createUser(t);
      const other = await login(t, u);
      const ended = await open(t, other.accessToken);
      const kept = await open(t, u.accessToken);
      const res = await t.api('POST', '/v1/auth/password/change', { token: u.accessToken, body: { currentPassword: u.password, newPassword: 'a brand new password' } });
      assert.equal(res.status, 204, JSON.stringify(res.body));
      assert.deepEqual(await closes(ended), { code: 4401, reason: 'session_revoked' });
      await stillServed(t, u.id, kept);
      await kept.close();
    });

    test('a password reset closes the socket of every session, and of an API key it deletes', async () => {
      const u = await createUser(t);
      const key = await apiKey(t, u);
      const onSession = await open(t, u.accessToken);
      const onKey = await open(t, key.key);
      assert.equal((await t.api('POST', '/v1/auth/password/forgot', { body: { email: u.email } })).status, 202);
      const token = tokenIn((await waitForMails(t, u.email, /reset your password/i))[0]!.text, '/reset-password');
      assert.equal((await t.api('POST', '/v1/auth/password/reset', { body: { token, password: 'a brand new password' } })).status, 204);
      assert.deepEqual(await closes(onSession), { code: 4401, reason: 'session_revoked' });
      // The reset proved the address for the first time: the keys made before it went too.
      assert.deepEqual(await closes(onKey), { code: 4401, reason: 'invalid_api_key' });
    });

    test('a refresh token used twice revokes its session and closes its socket; one on another session stays', async () => {
      const u = await createUser(t);
      const other = await login(t, u);
      const rotated = await t.api('POST', '/v1/auth/refresh', { body: { refreshToken: u.refreshToken } });
      assert.equal(rotated.status, 200, JSON.stringify(rotated.body));
      const ended = await open(t, rotated.body.accessToken);
      const kept = await open(t, other.accessToken);
      const reuse = await t.api('POST', '/v1/auth/refresh', { body: { refreshToken: u.refreshToken } });
      assert.equal(reuse.body.code, 'refresh_token_reused');
      assert.deepEqual(await closes(ended), { code: 4401, reason: 'session_revoked' });
      await stillServed(t, u.id, kept);
      await kept.close();
    });

    test('deleting an API key closes the socket on it; those on the session and on another key stay', async () => {
      const u = await createUser(t);
      const deleted = await apiKey(t, u);
      const other = await apiKey(t, u);
      const ended = await open(t, deleted.key);
      const kept = [await open(t, u.accessToken), await open(t, other.key)];
      assert.equal((await t.api('DELETE', `/v1/api-keys/${deleted.id}`, { token: u.accessToken })).status, 204);
      assert.deepEqual(await closes(ended), { code: 4401, reason: 'invalid_api_key' });
      await stillServed(t, u.id, ...kept);
      await Promise.all(kept.map((s) => s.close()));
    });

    test("an admin disabling the account closes all its sockets, session and key alike; another user's stays", async () => {
      const u = await createUser(t);
      const key = await apiKey(t, u);
      const ended = [await open(t, u.accessToken), await open(t, key.key)];
      const bystander = await createUser(t);
      const kept = await open(t, bystander.accessToken);
      const res = await t.api('POST', `/v1/admin/users/${u.id}/disable`, { token: root.accessToken });
      assert.equal(res.status, 200, JSON.stringify(res.body));
      for (const s of ended) assert.deepEqual(await closes(s), { code: 4401, reason: 'account_disabled' });
      await stillServed(t, bystander.id, kept);
      await kept.close();
    });

    test("a user's ban closes all their sockets with 4403; a ban on one key closes only that key's", async () => {
      const u = await createUser(t);
      const bannedKey = await apiKey(t, u);
      const onKey = await open(t, bannedKey.key);
      const kept = await open(t, u.accessToken);
      const keyBan = await t.api('POST', '/v1/admin/bans', { token: root.accessToken, body: { kind: 'api_key', subject: bannedKey.id, seconds: 60, reason: 'testing' } });
      assert.equal(keyBan.status, 201, JSON.stringify(keyBan.body));
      assert.deepEqual(await closes(onKey), { code: 4403, reason: 'banned' });
      await stillServed(t, u.id, kept);

      const ban = await t.api('POST', '/v1/admin/bans', { token: root.accessToken, body: { kind: 'user', subject: u.id, seconds: 60, reason: 'testing' } });
      assert.equal(ban.status, 201, JSON.stringify(ban.body));
      assert.deepEqual(await closes(kept), { code: 4403, reason: 'banned' });
    });

    test("an IP ban closes the sockets from its addresses (an IPv6 /64) with 4403; the user's from elsewhere, and an admin's, stay", async () => {
      const u = await createUser(t);
      const ended = await openFrom(t, u.accessToken, '2001:db8:70:1::a');
      const elsewhere = await openFrom(t, u.accessToken, '2001:db8:70:2::a');
      const admin = await openFrom(t, root.accessToken, '2001:db8:70:1::b');
      const ban = await t.api('POST', '/v1/admin/bans', { token: root.accessToken, body: { kind: 'ip', subject: '2001:db8:70:1::1', seconds: 60, reason: 'testing' } });
      assert.equal(ban.status, 201, JSON.stringify(ban.body));
      try {
        assert.deepEqual(await closes(ended), { code: 4403, reason: 'banned' });
        await stillServed(t, u.id, elsewhere);
        admin.send({ type: 'ping' });
        assert.deepEqual(await admin.next((f) => f.type === 'pong'), { type: 'pong' });
      } finally {
        assert.equal((await t.api('DELETE', `/v1/admin/bans/${ban.body.id}`, { token: root.accessToken })).status, 200);
        await Promise.all([elsewhere.close(), admin.close()]);
      }
    });

    test("a session revoked after a socket's first check, its notice gone by before the socket listened, still closes it", async () => {
      const u = await createUser(t);
      const { realtime, authenticate, limits } = t.services;
      // The gateway's own handling of a socket, over this app's services, as GET /v1/ws runs it; the first check of
      // the credential returns only once the session is revoked (through the API) and its notice has been relayed.
      let checks = 0;
      const revokedMeanwhile = async () => {
        let heard!: () => void;
        const notice = new Promise<void>((resolve) => (heard = resolve));
        const stop = await t.deps.broadcast.subscribe(userChannel(u.id), (message) => message === RECHECK && heard());
        assert.equal((await t.api('POST', '/v1/auth/logout', { body: { refreshToken: u.refreshToken } })).status, 204);
        await notice;
        await stop();
      };
      const server = new WebSocketServer({ port: 0, host: '127.0.0.1' });
      server.on('connection', (socket) =>
        acceptConnection(socket, u.accessToken, {
          gateway: realtime.gateway,
          topics: realtime.topics,
          settings: realtime.settings,
          logger: realtime.logger,
          authenticate: async (credential) => {
            const p = await authenticate(credential);
            if (checks++ === 0) await revokedMeanwhile();
            return p;
          },
          admit: async (p) => void (await limits.check({ ip: '127.0.0.1' }, p)),
          stillAdmitted: (p) => limits.refuseBanned({ ip: '127.0.0.1' }, p),
          address: '127.0.0.1',
          authenticated: () => {},
        }),
      );
      await new Promise((resolve) => server.once('listening', resolve));
      const ws = new WebSocket(`ws://127.0.0.1:${(server.address() as AddressInfo).port}`);
      try {
        // What comes first: the close, or a frame (`ready`: the socket would then have stayed open for WS_REAUTH_MS).
        const first = await new Promise((resolve) => {
          ws.once('message', (data) => resolve(JSON.parse(String(data))));
          ws.once('close', (code, reason) => resolve({ code, reason: String(reason) }));
        });
        assert.deepEqual(first, { code: 4401, reason: 'session_revoked' });
      } finally {
        ws.terminate();
        await new Promise((resolve) => server.close(resolve));
      }
    });

    test("an admin's socket from an address banned afterwards stays; once the admin is made a user, it closes with 4403", async () => {
      const demoted = await createUser(t, { admin: true });
      const admin = await openFrom(t, demoted.accessToken, '2001:db8:71:1::b');
      const ended = await openFrom(t, (await createUser(t)).accessToken, '2001:db8:71:1::a');
      const ban = await t.api('POST', '/v1/admin/bans', { token: root.accessToken, body: { kind: 'ip', subject: '2001:db8:71:1::1', seconds: 60, reason: 'testing' } });
      assert.equal(ban.status, 201, JSON.stringify(ban.body));
      try {
        // The user's socket closed: the ban's check has run on the admin's too, which let it be.
        assert.deepEqual(await closes(ended), { code: 4403, reason: 'banned' });
        admin.send({ type: 'ping' });
        assert.deepEqual(await admin.next((f) => f.type === 'pong'), { type: 'pong' });
        const res = await t.api('PATCH', `/v1/admin/users/${demoted.id}`, { token: root.accessToken, body: { role: 'user' } });
        assert.equal(res.status, 200, JSON.stringify(res.body));
        assert.deepEqual(await closes(admin), { code: 4403, reason: 'banned' });
      } finally {
        assert.equal((await t.api('DELETE', `/v1/admin/bans/${ban.body.id}`, { token: root.accessToken })).status, 200);
      }
    });

    test('deleting the account closes its sockets', async () => {
      const u = await createUser(t);
      const key = await apiKey(t, u);
      const ended = [await open(t, u.accessToken), await open(t, key.key)];
      assert.equal((await t.api('DELETE', '/v1/users/me', { token: u.accessToken, body: { password: u.password } })).status, 204);
      for (const s of ended) assert.equal((await closes(s)).code, 4401);
    });
  });
}

const skip = process.env.DATABASE_URL && process.env.REDIS_URL ? false : 'needs PostgreSQL and Redis (DATABASE_URL and REDIS_URL)';

describe('realtime: access ends at once on every instance sharing PostgreSQL and Redis', { skip }, () => {
  let a: TestApp;
  let b: TestApp;
  let root: TestUser;
  before(async () => {
    a = await startApp({ backend: 'postgres', env });
    b = await startApp({ sharedWith: a, env });
    root = await createUser(a, { admin: true });
  });
  after(async () => {
    await b?.close();
    await a?.close();
  });

  test("a session revoked through A closes its socket on B; B's socket on another session stays", async () => {
    const u = await createUser(a);
    const other = await login(a, u);
    const ended = await open(b, u.accessToken);
    const kept = await open(b, other.accessToken);
    assert.equal((await a.api('DELETE', `/v1/auth/sessions/${u.sessionId}`, { token: other.accessToken })).status, 204);
    assert.deepEqual(await closes(ended), { code: 4401, reason: 'session_revoked' });
    await stillServed(a, u.id, kept);
    await kept.close();
  });

  test('an API key deleted, or a user banned, through A closes the sockets on B', async () => {
    const u = await createUser(a);
    const key = await apiKey(a, u);
    const onKey = await open(b, key.key);
    const onSession = await open(b, u.accessToken);
    assert.equal((await a.api('DELETE', `/v1/api-keys/${key.id}`, { token: u.accessToken })).status, 204);
    assert.deepEqual(await closes(onKey), { code: 4401, reason: 'invalid_api_key' });
    await stillServed(a, u.id, onSession);

    const ban = await a.api('POST', '/v1/admin/bans', { token: root.accessToken, body: { kind: 'user', subject: u.id, seconds: 60, reason: 'testing' } });
    assert.equal(ban.status, 201, JSON.stringify(ban.body));
    assert.deepEqual(await closes(onSession), { code: 4403, reason: 'banned' });
  });

  test('an IP ban set through A closes the sockets from that address on B', async () => {
    const u = await createUser(a);
    const onB = await openFrom(b, u.accessToken, '198.51.100.70');
    const ban = await a.api('POST', '/v1/admin/bans', { token: root.accessToken, body: { kind: 'ip', subject: '198.51.100.70', seconds: 60, reason: 'testing' } });
    assert.equal(ban.status, 201, JSON.stringify(ban.body));
    assert.deepEqual(await closes(onB), { code: 4403, reason: 'banned' });
  });
});
