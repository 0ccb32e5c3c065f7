import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { connect, type Socket } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { WebSocket, type ClientOptions } from 'ws';
import { backends, startApp, type TestApp } from '../../support/app.ts';
import { eventually } from '../../support/eventually.ts';
import { createUser } from '../../support/factories.ts';
import { connectWs, wsUrl, type WsClient } from '../../support/ws.ts';

for (const backend of backends()) {
  describe(`realtime: sockets yet to authenticate, per client address [${backend}]`, () => {
    let t: TestApp;
    // TRUST_PROXY: each test speaks from addresses of its own, as clients behind a proxy do.
    before(async () => (t = await startApp({ backend, env: { WS_MAX_PENDING_PER_IP: '3', TRUST_PROXY: 'true', WS_AUTH_TIMEOUT_MS: '60000' } })));
    after(() => t.close());

    const opened: WsClient[] = [];
    after(() => Promise.all(opened.map((c) => c.close())));

    const from = async (address: string, opts: ClientOptions & { protocols?: string[] } = {}) => {
      const c = await connectWs(t, { ...opts, headers: { 'x-forwarded-for': address } });
      opened.push(c);
      return c;
    };

    /** An upgrade the server answers with an HTTP response instead: its status, Retry-After and problem. */
    const refused = (address: string) =>
      new Promise<{ status: number; retryAfter: string | undefined; body: any }>((resolve, reject) => {
        const ws = new WebSocket(wsUrl(t), ['parley.v1'], { headers: { 'x-forwarded-for': address } });
        ws.on('open', () => {
          ws.close();
          reject(new Error(`the upgrade from ${address} was accepted`));
        });
        ws.on('error', () => {});
        ws.once('unexpected-response', (_req, res) => {
          let text = '';
          res.setEncoding('utf8').on('data', (chunk: string) => (text += chunk));
          res.on('end', () => resolve({ status: res.statusCode!, retryAfter: res.headers['retry-after'], body: JSON.parse(text) }));
        });
      });

    test('WS_MAX_PENDING_PER_IP sockets of an address may wait for a credential; one more upgrade is a 429 problem; authenticating or closing one frees its place', async () => {
      const u = await createUser(t);
      const waiting = await Promise.all([1, 2, 3].map(() => from('203.0.113.7')));
      const over = await refused('203.0.113.7');
      assert.equal(over.status, 429);
      assert.equal(over.body.code, 'too_many_pending_sockets');
      assert.equal(over.retryAfter, '60', 'they have WS_AUTH_TIMEOUT_MS to authenticate');
      await from('203.0.113.8');

      waiting[0]!.send({ type: 'auth', token: u.accessToken });
      assert.deepEqual(await waiting[0]!.next(), { type: 'ready', userId: u.id });
      await from('203.0.113.7');
      assert.equal((await refused('203.0.113.7')).status, 429);

      await waiting[1]!.close();
      // The server gives the place back when it sees the connection end, a moment after the client does.
      await eventually(() => from('203.0.113.7'), 5_000);
    });

    test('a socket closed before it authenticated, whose client never answers the close frame, is cut and gives its place back', async () => {
      await from('203.0.113.20');
      await from('203.0.113.20');
      const mute = await muteClient(t, '203.0.113.20');
      assert.equal((await refused('203.0.113.20')).status, 429);
      // Any first message but auth closes it (4401); it never answers the close frame.
      mute.write(maskedText(JSON.stringify({ type: 'ping' })));
      await eventually(() => from('203.0.113.20'), 5_000);
      await mute.ended;
    });

    test('an IPv6 client counts by its /64', async () => {
      await Promise.all(['2001:db8:5:6::1', '2001:db8:5:6::2', '2001:db8:5:6:a:b:c:d'].map((a) => from(a)));
      assert.equal((await refused('2001:db8:5:6:ffff::9')).body.code, 'too_many_pending_sockets');
      await from('2001:db8:5:7::1');
    });

    test('a banned address opens no socket that has yet to authenticate (403 banned at the upgrade); with a credential, a user is closed with 4403, an admin goes on', async () => {
      const admin = await createUser(t, { admin: true });
      const u = await createUser(t);
      const ban = await t.api('POST', '/v1/admin/bans', { token: admin.accessToken, body: { kind: 'ip', subject: '198.51.100.9', seconds: 60, reason: 'testing' } });
      assert.equal(ban.status, 201, ban.text);
      const res = await refused('198.51.100.9');
      assert.equal(res.status, 403);
      assert.equal(res.body.code, 'banned');
      const user = await from('198.51.100.9', { protocols: ['parley.v1', `parley.auth.${u.accessToken}`] });
      assert.deepEqual(await user.closed, { code: 4403, reason: 'banned' });
      const root = await from('198.51.100.9', { protocols: ['parley.v1', `parley.auth.${admin.accessToken}`] });
      assert.deepEqual(await root.next(), { type: 'ready', userId: admin.id });
    });
  });
}

/** A client that completes the upgrade by hand and then answers nothing; `ended` once the server cuts it. */
async function muteClient(t: TestApp, address: string): Promise<Socket & { ended: Promise<void> }> {
  const { hostname, port } = new URL(t.url);
  const socket = connect(Number(port), hostname);
  const ended = new Promise<void>((resolve) => socket.on('close', () => resolve()));
  socket.on('error', () => {});
  socket.write(
    `GET /v1/ws HTTP/1.1\r\nhost: ${hostname}:${port}\r\nconnection: Upgrade\r\nupgrade: websocket\r\nsec-websocket-version: 13\r\n` +
      `sec-websocket-key: ${randomBytes(16).toString('base64')}\r\nsec-websocket-protocol: parley.v1\r\nx-forwarded-for: ${address}\r\n\r\n`,
  );
  const head = await new Promise<string>((resolve) => socket.once('data', (chunk) => resolve(String(chunk))));
  assert.match(head, /^HTTP\/1.1 101 /);
  // What the server sends is read and dropped: its close frame stays unanswered.
  socket.on('data', () => {});
  return Object.assign(socket, { ended });
}

/** One masked text frame, as a client must send it (payloads under 126 bytes). */
function maskedText(text: string): Buffer {
  const payload = Buffer.from(text);
  const mask = randomBytes(4);
  return Buffer.concat([Buffer.from([0x81, 0x80 | payload.length]), mask, payload.map((b, i) => b ^ mask[i % 4]!)]);
}
