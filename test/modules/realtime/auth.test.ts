import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { WebSocket } from 'ws';
import { backends, startApp, type TestApp } from '../../support/app.ts';
import { eventually } from '../../support/eventually.ts';
import { createUser } from '../../support/factories.ts';
import { connectAs, connectWs, subscribe, wsUrl } from '../../support/ws.ts';

for (const backend of backends()) {
  describe(`realtime: authentication [${backend}]`, () => {
    let t: TestApp;
    before(async () => {
      t = await startApp({ backend, env: { WS_AUTH_TIMEOUT_MS: '300', WS_MAX_CONNECTIONS_PER_USER: '3' } });
    });
    after(() => t.close());

    test('first message auth: ready with the user id', async () => {
      const u = await createUser(t);
      const c = await connectWs(t);
      c.send({ type: 'auth', token: u.accessToken });
      assert.deepEqual(await c.next(), { type: 'ready', userId: u.id });
      c.send({ type: 'ping' });
      assert.deepEqual(await c.next(), { type: 'pong' });
      c.send({ type: 'auth', token: u.accessToken });
      assert.deepEqual(await c.next(), { type: 'ready', userId: u.id }, 'the same credential again renews nothing but is no error');
      await c.close();
    });

    test('subprotocol auth: the server selects parley.v1, and a subscribe sent at once waits for the credential', async () => {
      const u = await createUser(t);
      const c = await connectWs(t, { protocols: ['parley.v1', `parley.auth.${u.accessToken}`] });
      assert.equal(c.ws.protocol, 'parley.v1');
      c.send({ type: 'subscribe', topic: 'user' });
      assert.deepEqual(await c.next(), { type: 'ready', userId: u.id });
      assert.deepEqual(await c.next(), { type: 'subscribed', topic: 'user' });
      await c.close();
    });

    test('an API key authenticates too; a key without the chat scope cannot subscribe to conversations', async () => {
      const u = await createUser(t);
      const { secret } = await t.services.apiKeys.create(u.id, { name: 'ws', scopes: ['profile:read'] });
      const c = await connectAs(t, secret);
      c.send({ type: 'subscribe', topic: 'conversations' });
      assert.deepEqual(await c.next(), { type: 'error', code: 'insufficient_scope', message: 'This API key lacks the "chat" scope', topic: 'conversations' });
      c.send({ type: 'subscribe', topic: 'jobs' });
      assert.deepEqual(await c.next(), { type: 'error', code: 'insufficient_scope', message: 'This API key lacks the "jobs:read" scope', topic: 'jobs' });
      c.send({ type: 'subscribe', topic: 'user' });
      assert.deepEqual(await c.next(), { type: 'subscribed', topic: 'user' });
      await c.close();
    });

    test('a bad token closes with 4401, by message and by subprotocol', async () => {
      const c = await connectWs(t);
      c.send({ type: 'auth', token: 'not-a-token' });
      assert.deepEqual(await c.closed, { code: 4401, reason: 'invalid_token' });
      const d = await connectWs(t, { protocols: ['parley.v1', 'parley.auth.pk_nope'] });
      assert.deepEqual(await d.closed, { code: 4401, reason: 'invalid_api_key' });
    });

    test('a first message that is not auth closes with 4401', async () => {
      const c = await connectWs(t);
      c.send({ type: 'subscribe', topic: 'user' });
      assert.equal((await c.closed).code, 4401);
    });

    test('a revoked session cannot connect', async () => {
      const u = await createUser(t);
      await t.api('POST', '/v1/auth/logout', { token: u.accessToken, body: { refreshToken: u.refreshToken } });
      const c = await connectWs(t);
      c.send({ type: 'auth', token: u.accessToken });
      assert.deepEqual(await c.closed, { code: 4401, reason: 'session_revoked' });
    });

    test('no auth within WS_AUTH_TIMEOUT_MS closes with 4408', async () => {
      const c = await connectWs(t);
      assert.deepEqual(await c.closed, { code: 4408, reason: 'authentication timed out' });
      assert.deepEqual(c.frames, []);
    });

    test('the token is never taken from the URL', async () => {
      const u = await createUser(t);
      const ws = new WebSocket(`${wsUrl(t)}?token=${u.accessToken}&access_token=${u.accessToken}`);
      ws.on('error', () => {});
      const code = await new Promise<number>((resolve) => ws.on('close', resolve));
      assert.equal(code, 4408);
    });

    test('the access cookie works from an allowed Origin only', async () => {
      const u = await createUser(t);
      const cookie = `parley_access=${u.accessToken}`;
      const ok = await connectWs(t, { headers: { cookie, origin: 'http://parley.test' } });
      assert.deepEqual(await ok.next(), { type: 'ready', userId: u.id });
      await ok.close();
      // Another site's page opening a socket with the user's cookies gets nothing from them.
      const evil = await connectWs(t, { headers: { cookie, origin: 'https://evil.example' } });
      assert.equal((await evil.closed).code, 4408);
    });

    test('a user gets WS_MAX_CONNECTIONS_PER_USER sockets; one more closes with 4429; a closed one frees its place', async () => {
      const u = await createUser(t);
      const open = await Promise.all([1, 2, 3].map(() => connectAs(t, u.accessToken)));
      const extra = await connectWs(t);
      extra.send({ type: 'auth', token: u.accessToken });
      assert.deepEqual(await extra.closed, { code: 4429, reason: 'too many connections for this user' });
      // Another user is not affected.
      const other = await createUser(t);
      await (await connectAs(t, other.accessToken)).close();
      await open[0]!.close();
      // The server frees the slot when it sees the close, a moment after the client does.
      const again = await eventually(() => connectAs(t, u.accessToken), 5_000);
      await Promise.all([again, ...open.slice(1)].map((c) => c.close()));
    });

    test('a plain GET (no upgrade) is 426 Upgrade Required', async () => {
      const res = await t.api('GET', '/v1/ws');
      assert.equal(res.status, 426);
      assert.equal(res.body.code, 'upgrade_required');
      assert.equal(res.headers.get('upgrade'), 'websocket');
    });

    test('a malformed upgrade is a 400 problem, not ws\'s text/html page', async () => {
      const host = new URL(t.url).host;
      const upgrade = (headers: string) => rawExchange(t.url, `GET /v1/ws HTTP/1.1\r\nhost: ${host}\r\nconnection: Upgrade\r\nupgrade: websocket\r\n${headers}\r\n`);
      const noKey = await upgrade('sec-websocket-version: 13\r\n');
      assert.match(noKey.head, /^HTTP\/1.1 400 /);
      assert.match(noKey.head, /content-type: application\/problem\+json/i);
      assert.equal(noKey.body.code, 'invalid_websocket_handshake');
      assert.match(String(noKey.body.detail), /Sec-WebSocket-Key/);
      const oldVersion = await upgrade('sec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\nsec-websocket-version: 7\r\n');
      assert.equal(oldVersion.body.status, 400);
      assert.match(oldVersion.head, /sec-websocket-version: 13, 8/i, 'the versions this server speaks are named');
      const badProtocol = await upgrade('sec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\nsec-websocket-version: 13\r\nsec-websocket-protocol: parley.v1,,\r\n');
      assert.equal(badProtocol.body.code, 'invalid_websocket_handshake');
      assert.match(String(badProtocol.body.detail), /Sec-WebSocket-Protocol/);
    });

    test('a client that does not offer parley.v1 fails the handshake', async () => {
      await assert.rejects(connectWs(t, { protocols: ['graphql-ws'] }), /subprotocol/);
    });
  });
}

describe('realtime: request limits on an open socket', () => {
  let t: TestApp;
  before(async () => {
    t = await startApp({ env: { RATE_LIMIT_ENABLED: 'true', RATE_LIMIT_USER_RPM: '6' } });
  });
  after(() => t.close());

  test('each subscribe that looks up what it names, and each renewal, counts as a request: past the limit, rate_limited', async () => {
    const u = await createUser(t);
    const c = await connectAs(t, u.accessToken); // the first request
    const looked: string[] = [];
    for (let i = 0; i < 8; i++) looked.push(String((await subscribe(c, `conversation:${crypto.randomUUID()}`)).code));
    // Five more fit the minute's six; each of the rest is refused without its look-up (it was a database read each, unbounded).
    assert.deepEqual(looked, [...Array(5).fill('not_found'), 'rate_limited', 'rate_limited', 'rate_limited']);
    c.send({ type: 'auth', token: u.accessToken });
    assert.equal((await c.next((f) => f.type === 'ready' || f.type === 'error')).code, 'rate_limited', 'a renewal is a token check: a request too');
    assert.deepEqual(await subscribe(c, 'user'), { type: 'subscribed', topic: 'user' }, 'a topic without a look-up costs nothing');
    assert.equal(c.ws.readyState, c.ws.OPEN);
    await c.close();
  });
});

/** Writes `request` on a new connection and reads until the server closes it: the head and the JSON body. */
async function rawExchange(base: string, request: string): Promise<{ head: string; body: Record<string, unknown> }> {
  const { hostname, port } = new URL(base);
  const socket = connect(Number(port), hostname);
  socket.end(request);
  const chunks: Buffer[] = [];
  for await (const chunk of socket) chunks.push(chunk as Buffer);
  const [head = '', body = ''] = Buffer.concat(chunks).toString('utf8').split('\r\n\r\n');
  return { head, body: JSON.parse(body) };
}
