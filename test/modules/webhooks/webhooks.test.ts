import assert from 'node:assert/strict';
import http from 'node:http';
import net, { type AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { sql } from 'drizzle-orm';
import { backends, startApp, type TestApp } from '../../support/app.ts';
import { eventually } from '../../support/eventually.ts';
import { createUser, type TestUser } from '../../support/factories.ts';
import { PNG, uploadFile } from '../../support/files.ts';
import { isPrivateAddress } from '../../../src/modules/webhooks/index.ts';
import { post } from '../../../src/modules/webhooks/delivery.ts';
import { startWorker } from '../../../src/worker.ts';
import { startReceiver, verifies } from './receiver.ts';

type Receiver = Awaited<ReturnType<typeof startReceiver>>;

// Loopback receivers need private addresses allowed; a 500 ms timeout, the schedule a thousandth as long (5 ms, 300 ms, 1.8 s, …) and a 1.5 s failing window; 20 endpoints a user (the shared user `u` registers 13 over the file).
const ENV = { WEBHOOKS_ALLOW_PRIVATE: 'true', WEBHOOKS_TIMEOUT_MS: '500', WEBHOOKS_RETRY_SCALE: '0.001', WEBHOOKS_DISABLE_AFTER_MS: '1500', WEBHOOKS_MAX_ENDPOINTS: '20' };

for (const backend of backends()) {
  describe(`webhooks [${backend}]`, () => {
    let t: TestApp;
    let receiver: Receiver;
    let u: TestUser;
    let stranger: TestUser;

    const register = async (user: TestUser, path: string, events = ['file.ready']) => {
      const res = await t.api('POST', '/v1/webhooks/endpoints', { token: user.accessToken, body: { url: receiver.url + path, events } });
      assert.equal(res.status, 201, res.text);
      return res.body as { id: string; secret: string; url: string };
    };
    const testSend = async (endpointId: string) => {
      const res = await t.api('POST', `/v1/webhooks/endpoints/${endpointId}/test`, { token: u.accessToken });
      assert.equal(res.status, 202, res.text);
      return res.body as { id: string; status: string };
    };
    const attempts = async (messageId: string, user = u) => {
      const res = await t.api('GET', `/v1/webhooks/messages/${messageId}/attempts`, { token: user.accessToken });
      assert.equal(res.status, 200, res.text);
      return res.body.data as Array<{ attempt: number; statusCode: number | null; latencyMs: number; responseExcerpt: string | null; error: string | null }>;
    };

    before(async () => {
      receiver = await startReceiver({
        '/flaky': (n) => ({ status: n === 1 ? 500 : 200 }),
        '/hang': () => 'hang',
        '/redirect': () => ({ status: 302, location: '/landed' }),
        '/huge': () => 'huge',
        '/down': () => ({ status: 503 }),
        '/batch-flaky': (n) => ({ status: n === 1 ? 500 : 200 }),
        '/nul': () => ({ status: 200, body: 'ok\u0000done' }),
        '/nul-flaky': (n) => (n === 1 ? { status: 500, body: 'bad\u0000news' } : { status: 200, body: 'ok\u0000done' }),
      });
      t = await startApp({ backend, env: ENV });
      u = await createUser(t);
      stranger = await createUser(t);
    });
    after(async () => {
      await t.close();
      await receiver.close();
    });

    test('an event reaches its endpoint signed, and verifies as a receiver checks it', async () => {
      const owner = await createUser(t);
      const endpoint = await register(owner, '/files');
      assert.match(endpoint.secret, /^whsec_[A-Za-z0-9+/=]+$/);
      const listed = await t.api('GET', `/v1/webhooks/endpoints/${endpoint.id}`, { token: owner.accessToken });
      assert.equal(listed.body.secret, undefined, 'the secret is shown once');
      const file = await uploadFile(t, owner, 'dot.png', PNG);
      const [r] = await eventually(() => {
        const got = receiver.on('/files');
        assert.equal(got.length, 1);
        return got;
      });
      assert.ok(verifies(endpoint.secret, r!), JSON.stringify(r!.headers));
      assert.ok(!verifies('whsec_' + Buffer.alloc(24).toString('base64'), r!));
      assert.match(String(r!.headers['webhook-id']), /^msg_[0-9a-f]{32}$/);
      const body = JSON.parse(r!.body);
      assert.equal(body.type, 'file.ready');
      assert.equal(body.data.fileId, file.id);
      const messages = await t.api('GET', `/v1/webhooks/endpoints/${endpoint.id}/messages`, { token: owner.accessToken });
      assert.equal(messages.body.data.length, 1);
      await eventually(async () => assert.equal((await t.api('GET', `/v1/webhooks/messages/${messages.body.data[0].id}`, { token: owner.accessToken })).body.status, 'delivered'));
    });

    test('a new conversation and a new notification reach the endpoints that want them', async () => {
      const owner = await createUser(t);
      const endpoint = await register(owner, '/lifecycle', ['conversation.created', 'notification.created']);
      const conversation = await t.api('POST', '/v1/conversations', { token: owner.accessToken, body: { title: 'Plans' } });
      assert.equal(conversation.status, 201, conversation.text);
      const admin = await createUser(t, { admin: true });
      const sent = await t.api('POST', '/v1/notifications', { token: admin.accessToken, body: { userId: owner.id, category: 'system.message', title: 'Hello', body: 'Welcome aboard' } });
      assert.equal(sent.status, 201, sent.text);
      const got = await eventually(() => {
        const all = receiver.on('/lifecycle');
        assert.equal(all.length, 2);
        return all.map((r) => JSON.parse(r.body)).sort((a, b) => (a.type < b.type ? -1 : 1));
      });
      assert.deepEqual([got[0].type, got[0].data.conversationId, got[0].data.title], ['conversation.created', conversation.body.id, 'Plans']);
      assert.deepEqual([got[1].type, got[1].data.title], ['notification.created', 'Hello']);
      assert.ok(receiver.on('/lifecycle').every((r) => verifies(endpoint.secret, r)));
    });

    test('a 500 is retried on the schedule; every attempt is logged with status, latency and excerpt', async () => {
      const endpoint = await register(u, '/flaky');
      const message = await testSend(endpoint.id);
      const log = await eventually(async () => {
        const a = await attempts(message.id);
        assert.equal(a.length, 2);
        return a;
      });
      assert.deepEqual(log.map((a) => [a.attempt, a.statusCode]), [[1, 500], [2, 200]]);
      assert.equal(log[0]!.responseExcerpt, 'answer 500 to /flaky');
      assert.equal(log[0]!.error, 'HTTP 500');
      assert.ok(log.every((a) => Number.isInteger(a.latencyMs) && a.latencyMs >= 0));
      assert.equal(receiver.on('/flaky').length, 2);
      assert.equal(new Set(receiver.on('/flaky').map((r) => r.headers['webhook-id'])).size, 1, 'one webhook-id for every attempt');
      await eventually(async () => assert.equal((await t.api('GET', `/v1/webhooks/messages/${message.id}`, { token: u.accessToken })).body.status, 'delivered'));
    });

    test('a receiver that hangs fails by the timeout, logged', async () => {
      const endpoint = await register(u, '/hang');
      const message = await testSend(endpoint.id);
      const [first] = await eventually(async () => {
        const a = await attempts(message.id);
        assert.ok(a.length >= 1);
        return a;
      });
      assert.equal(first!.statusCode, null);
      assert.match(first!.error!, /Timed out after 500 ms/);
      assert.ok(first!.latencyMs >= 450);
    });

    test('a redirect is not followed: the 3xx is a failed attempt', async () => {
      const endpoint = await register(u, '/redirect');
      const message = await testSend(endpoint.id);
      const [first] = await eventually(async () => {
        const a = await attempts(message.id);
        assert.ok(a.length >= 1);
        return a;
      });
      assert.equal(first!.statusCode, 302);
      assert.match(first!.error!, /Redirect/);
      assert.equal(receiver.on('/landed').length, 0);
    });

    test('a 50 MB answer is cut after the excerpt; the 2xx counts', async () => {
      const endpoint = await register(u, '/huge');
      const message = await testSend(endpoint.id);
      const [first] = await eventually(async () => {
        const a = await attempts(message.id);
        assert.equal(a.length, 1);
        return a;
      });
      assert.equal(first!.statusCode, 200);
      assert.ok(first!.responseExcerpt!.length <= 1024 && first!.responseExcerpt!.startsWith('xxxx'));
    });

    test('an answer with a NUL byte is logged without it: the first 2xx delivers, once; a failure is retried', async () => {
      const message = await testSend((await register(u, '/nul')).id);
      await eventually(async () => assert.equal((await t.api('GET', `/v1/webhooks/messages/${message.id}`, { token: u.accessToken })).body.status, 'delivered'));
      assert.deepEqual((await attempts(message.id)).map((a) => [a.attempt, a.statusCode, a.responseExcerpt, a.error]), [[1, 200, 'okdone', null]]);
      assert.equal(receiver.on('/nul').length, 1);

      const retried = await testSend((await register(u, '/nul-flaky')).id);
      await eventually(async () => assert.equal((await t.api('GET', `/v1/webhooks/messages/${retried.id}`, { token: u.accessToken })).body.status, 'delivered'));
      assert.deepEqual((await attempts(retried.id)).map((a) => [a.attempt, a.statusCode, a.responseExcerpt, a.error]), [[1, 500, 'badnews', 'HTTP 500'], [2, 200, 'okdone', null]]);
      assert.equal(receiver.on('/nul-flaky').length, 2);
      // Sent exactly once per attempt: no job left running to send it again.
      await eventually(async () => {
        const jobs = (await t.deps.queue.list({ queue: 'webhooks.deliver', limit: 100 })).jobs.filter((j) => JSON.stringify(j.data).includes(retried.id));
        assert.deepEqual(jobs.map((j) => j.state), ['completed', 'completed'], JSON.stringify(jobs.map((j) => j.error)));
      });
    });

    test('bad URLs are refused with a 400: credentials, another scheme, not a URL', async () => {
      for (const url of ['http://user:pass@127.0.0.1/x', 'ftp://127.0.0.1/x', 'file:///etc/passwd', 'not a url']) {
        const res = await t.api('POST', '/v1/webhooks/endpoints', { token: u.accessToken, body: { url, events: ['file.ready'] } });
        assert.equal(res.status, 400, `${url}: ${res.text}`);
      }
      const res = await t.api('POST', '/v1/webhooks/endpoints', { token: u.accessToken, body: { url: receiver.url, events: ['nope'] } });
      assert.equal(res.status, 400);
    });

    test("another user's endpoint and messages are not found, everywhere", async () => {
      const endpoint = await register(u, '/mine');
      const message = await testSend(endpoint.id);
      const as = { token: stranger.accessToken };
      const calls: Array<[string, string, unknown?]> = [
        ['GET', `/v1/webhooks/endpoints/${endpoint.id}`],
        ['PATCH', `/v1/webhooks/endpoints/${endpoint.id}`, { events: ['job.failed'] }],
        ['DELETE', `/v1/webhooks/endpoints/${endpoint.id}`],
        ['POST', `/v1/webhooks/endpoints/${endpoint.id}/rotate-secret`],
        ['POST', `/v1/webhooks/endpoints/${endpoint.id}/test`],
        ['GET', `/v1/webhooks/endpoints/${endpoint.id}/messages`],
        ['GET', `/v1/webhooks/messages/${message.id}`],
        ['GET', `/v1/webhooks/messages/${message.id}/attempts`],
        ['POST', `/v1/webhooks/messages/${message.id}/replay`],
      ];
      for (const [method, path, body] of calls) {
        const res = await t.api(method, path, { ...as, body });
        assert.equal(res.status, 404, `${method} ${path}: ${res.text}`);
      }
      assert.equal((await t.api('GET', '/v1/webhooks/endpoints', as)).body.data.length, 0);
      assert.equal((await t.api('GET', `/v1/webhooks/endpoints/${endpoint.id}`, { token: u.accessToken })).status, 200);
    });

    test('a replay sends the message again with the same webhook-id', async () => {
      const endpoint = await register(u, '/replayed');
      const message = await testSend(endpoint.id);
      await eventually(() => assert.equal(receiver.on('/replayed').length, 1));
      const res = await t.api('POST', `/v1/webhooks/messages/${message.id}/replay`, { token: u.accessToken });
      assert.equal(res.status, 202, res.text);
      await eventually(() => assert.equal(receiver.on('/replayed').length, 2));
      const [a, b] = receiver.on('/replayed');
      assert.equal(a!.headers['webhook-id'], message.id);
      assert.equal(b!.headers['webhook-id'], message.id);
      assert.equal(a!.body, b!.body);
      assert.ok(verifies(endpoint.secret, b!));
      await eventually(async () => assert.equal((await attempts(message.id)).length, 2));
    });

    test('a disabled endpoint refuses a test send and a replay with a 409, queueing nothing; enabled again, both go out', async () => {
      const endpoint = await register(u, '/paused');
      const first = await testSend(endpoint.id);
      await eventually(async () => assert.equal((await t.api('GET', `/v1/webhooks/messages/${first.id}`, { token: u.accessToken })).body.status, 'delivered'));
      assert.equal((await t.api('PATCH', `/v1/webhooks/endpoints/${endpoint.id}`, { token: u.accessToken, body: { disabled: true } })).body.disabled, true);
      for (const path of [`/v1/webhooks/endpoints/${endpoint.id}/test`, `/v1/webhooks/messages/${first.id}/replay`]) {
        const res = await t.api('POST', path, { token: u.accessToken });
        assert.equal(res.status, 409, `${path}: ${res.text}`);
        assert.match(res.headers.get('content-type') ?? '', /problem\+json/);
        assert.equal(res.body.code, 'webhook_endpoint_disabled');
        assert.match(res.body.detail, /disabled \(by its owner\)/);
      }
      const listed = (await t.api('GET', `/v1/webhooks/endpoints/${endpoint.id}/messages`, { token: u.accessToken })).body.data;
      assert.deepEqual(listed.map((m: any) => [m.id, m.status]), [[first.id, 'delivered']], 'no message made, the replayed one untouched');
      // Another user's disabled endpoint is still not found.
      assert.equal((await t.api('POST', `/v1/webhooks/endpoints/${endpoint.id}/test`, { token: stranger.accessToken })).status, 404);

      await t.api('PATCH', `/v1/webhooks/endpoints/${endpoint.id}`, { token: u.accessToken, body: { disabled: false } });
      await testSend(endpoint.id);
      assert.equal((await t.api('POST', `/v1/webhooks/messages/${first.id}/replay`, { token: u.accessToken })).status, 202);
      await eventually(() => assert.equal(receiver.on('/paused').length, 3));
    });

    test('during a secret rotation both signatures are sent, and each verifies', async () => {
      const endpoint = await register(u, '/rotated');
      const rotated = await t.api('POST', `/v1/webhooks/endpoints/${endpoint.id}/rotate-secret`, { token: u.accessToken });
      assert.equal(rotated.status, 200, rotated.text);
      assert.notEqual(rotated.body.secret, endpoint.secret);
      assert.ok(rotated.body.secretRotatedUntil);
      await testSend(endpoint.id);
      const [r] = await eventually(() => {
        const got = receiver.on('/rotated');
        assert.equal(got.length, 1);
        return got;
      });
      assert.equal(String(r!.headers['webhook-signature']).split(' ').length, 2);
      assert.ok(verifies(rotated.body.secret, r!), 'the new secret verifies');
      assert.ok(verifies(endpoint.secret, r!), 'the old secret still verifies');
    });

    test('two rotations at once (a double click): each answers with a secret that signs, and the one they replaced still signs', async () => {
      const owner = await createUser(t);
      const endpoint = await register(owner, '/rotated-twice');
      const rotations = await Promise.all([1, 2].map(() => t.services.webhooks.rotateSecret(owner.id, endpoint.id)));
      const message = (await t.api('POST', `/v1/webhooks/endpoints/${endpoint.id}/test`, { token: owner.accessToken })).body;
      const [r] = await eventually(() => {
        const got = receiver.on('/rotated-twice');
        assert.equal(got.length, 1);
        return got;
      });
      assert.equal(r!.headers['webhook-id'], message.id);
      assert.equal(String(r!.headers['webhook-signature']).split(' ').length, 3);
      for (const [i, { secret }] of rotations.entries()) assert.ok(verifies(secret, r!), `the secret rotation ${i + 1} answered with verifies`);
      assert.ok(verifies(endpoint.secret, r!), 'the secret both replaced (one of them directly, the other through it) verifies');
    });

    test('a user registers at most WEBHOOKS_MAX_ENDPOINTS endpoints (20 here), registrations side by side included; a deleted one frees its place', async () => {
      const owner = await createUser(t);
      const create = () => t.api('POST', '/v1/webhooks/endpoints', { token: owner.accessToken, body: { url: receiver.url + '/many', events: ['file.ready'] } });
      for (let i = 0; i < 15; i++) assert.equal((await create()).status, 201);
      const raced = await Promise.all(Array.from({ length: 10 }, create));
      assert.deepEqual(raced.map((r) => r.status).sort(), [...Array(5).fill(201), ...Array(5).fill(409)], raced.map((r) => r.text).join('\n'));
      const refused = raced.find((r) => r.status === 409)!;
      assert.equal(refused.body.code, 'webhook_endpoint_limit');
      assert.match(refused.headers.get('content-type') ?? '', /application\/problem\+json/);
      const all = await t.api('GET', '/v1/webhooks/endpoints?limit=100', { token: owner.accessToken });
      assert.equal(all.body.data.length, 20);
      assert.equal((await t.api('DELETE', `/v1/webhooks/endpoints/${raced.find((r) => r.status === 201)!.body.id}`, { token: owner.accessToken })).status, 204);
      assert.equal((await create()).status, 201);
    });

    test('the test send reaches the endpoint as webhook.test', async () => {
      const endpoint = await register(u, '/tested');
      const message = await testSend(endpoint.id);
      const [r] = await eventually(() => {
        const got = receiver.on('/tested');
        assert.equal(got.length, 1);
        return got;
      });
      assert.equal(JSON.parse(r!.body).type, 'webhook.test');
      assert.equal(r!.headers['webhook-id'], message.id);
      assert.ok(verifies(endpoint.secret, r!));
    });

    test('attempts reuse a kept-alive connection; one the receiver dropped is retried at once on a new one', async () => {
      // A receiver that drops a connection at its second request, unanswered, as a server closing an idle socket just as a request goes out.
      let dropped = 0;
      const requests: string[] = [];
      const server = http.createServer((req, res) => {
        const socket = req.socket as typeof req.socket & { served?: number };
        socket.served = (socket.served ?? 0) + 1;
        if (socket.served === 2) {
          dropped++;
          return void socket.destroy();
        }
        req.resume();
        req.on('end', () => {
          requests.push(String(req.headers['webhook-id']));
          res.end('ok');
        });
      });
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      try {
        const res = await t.api('POST', '/v1/webhooks/endpoints', { token: u.accessToken, body: { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/kept`, events: ['file.ready'] } });
        assert.equal(res.status, 201, res.text);
        const ids: string[] = [];
        // One after another: each attempt finds the previous one's socket idle in the pool.
        for (let i = 0; i < 3; i++) {
          const message = await testSend(res.body.id);
          ids.push(message.id);
          await eventually(async () => assert.equal((await t.api('GET', `/v1/webhooks/messages/${message.id}`, { token: u.accessToken })).body.status, 'delivered'));
        }
        assert.ok(dropped >= 1, 'a kept-alive connection was reused (and dropped by the receiver)');
        for (const id of ids) assert.ok(requests.includes(id), `${id} was answered`);
        // (A loaded machine may still time an attempt out at this file's 500 ms: only the dropped socket must never count.)
        for (const id of ids) for (const a of await attempts(id)) assert.doesNotMatch(String(a.error), /reset|hang up/i, 'a dropped socket is not a failed attempt');
      } finally {
        server.closeAllConnections();
        await new Promise<void>((resolve) => server.close(() => resolve()));
      }
    });

    test('an event redelivered by the bus makes no second message', async () => {
      const endpoint = await register(u, '/once', ['job.failed']);
      assert.equal(await t.services.webhooks.emit(u.id, 'job.failed', { jobId: 'j1', queue: 'q' }, 'event-1'), 1);
      assert.equal(await t.services.webhooks.emit(u.id, 'job.failed', { jobId: 'j1', queue: 'q' }, 'event-1'), 0);
      await eventually(() => assert.equal(receiver.on('/once').length, 1));
      const messages = await t.api('GET', `/v1/webhooks/endpoints/${endpoint.id}/messages`, { token: u.accessToken });
      assert.equal(messages.body.data.length, 1);
    });

    test('a burst of events is made into messages together: one per endpoint and event, in publish order, each delivered', async () => {
      const [one, two] = [await createUser(t), await createUser(t)];
      const first = await register(one, '/burst-1', ['job.failed']);
      const second = await register(two, '/burst-2', ['job.failed', 'file.ready']);
      // Published back to back: the bus hands the webhooks subscriber many of them at once.
      const published: Array<{ user: string; jobId: string }> = [];
      await Promise.all(
        Array.from({ length: 30 }, (_, i) => {
          const user = i % 3 === 0 ? two : one;
          published.push({ user: user.id, jobId: `burst-${i}` });
          return t.deps.bus.publish('job.failed', { userId: user.id, jobId: `burst-${i}`, queue: 'q', attempts: 3, error: 'boom', errorCode: 'internal_error' });
        }),
      );
      const expect = (user: TestUser) => published.filter((p) => p.user === user.id).map((p) => p.jobId);
      // At least once: an attempt that outlived the 500 ms timeout on a loaded machine is sent again, with the same webhook-id.
      const received = (path: string) => [...new Map(receiver.on(path).map((r) => [r.headers['webhook-id'], JSON.parse(r.body).data.jobId as string])).values()];
      const got = await eventually(() => {
        const [a, b] = [received('/burst-1'), received('/burst-2')];
        assert.deepEqual([a.length, b.length], [20, 10]);
        return { a, b };
      }, 15_000);
      assert.deepEqual([...got.a].sort(), [...expect(one)].sort());
      assert.deepEqual([...got.b].sort(), [...expect(two)].sort());
      // A job.failed webhook carries the event's error as its owner is told it, and the error's code.
      const { jobId: _, ...failure } = JSON.parse(receiver.on('/burst-1')[0]!.body).data;
      assert.deepEqual(failure, { queue: 'q', attempts: 3, error: 'boom', errorCode: 'internal_error' });
      // Messages are listed newest first: the reverse of publish order, per user.
      for (const [user, endpoint] of [
        [one, first],
        [two, second],
      ] as const) {
        const listed = await t.api('GET', `/v1/webhooks/endpoints/${endpoint.id}/messages?limit=100`, { token: user.accessToken });
        assert.equal(listed.status, 200, listed.text);
        assert.deepEqual(
          listed.body.data.map((m: { payload: { jobId: string } }) => m.payload.jobId).reverse(),
          expect(user),
        );
      }
    });

    test('the first attempts of messages made together run in one job: one that fails is retried alone, and the job run again sends nothing twice', async () => {
      const owner = await createUser(t);
      const [ok, flaky] = [await register(owner, '/batch-ok', ['job.failed']), await register(owner, '/batch-flaky', ['job.failed'])];
      const events = ['b1', 'b2', 'b3'].map((jobId) => ({ userId: owner.id, eventType: 'job.failed' as const, payload: { jobId }, sourceEventId: `batch-${jobId}` }));
      assert.equal(await t.services.webhooks.emitMany(events), 6);
      const messages = async (endpointId: string) =>
        (await t.api('GET', `/v1/webhooks/endpoints/${endpointId}/messages`, { token: owner.accessToken })).body.data as Array<{ id: string; status: string }>;
      const made = await eventually(async () => {
        const all = [...(await messages(ok.id)), ...(await messages(flaky.id))];
        assert.deepEqual(all.map((m) => m.status), Array(6).fill('delivered'));
        return all;
      });
      // One job carried all six first attempts.
      const jobs = (await t.deps.queue.list({ queue: 'webhooks.deliver', limit: 100 })).jobs.filter((j) => (j.data as { messageIds?: string[] }).messageIds?.includes(made[0]!.id));
      assert.deepEqual(jobs.map((j) => (j.data as { messageIds: string[] }).messageIds.toSorted()), [made.map((m) => m.id).toSorted()]);
      // The attempt that got a 500 was retried on its own; every message was sent as often as its attempts say
      // (once, unless an attempt failed: on a loaded machine one may outlive the 500 ms timeout).
      const received = () => [...receiver.on('/batch-ok'), ...receiver.on('/batch-flaky')].map((r) => r.headers['webhook-id'] as string);
      for (const m of made) assert.equal(received().filter((id) => id === m.id).length, (await attempts(m.id, owner)).length, m.id);
      const first = receiver.on('/batch-flaky')[0]!.headers['webhook-id'] as string;
      assert.deepEqual((await attempts(first, owner)).map((a) => a.statusCode).slice(0, 1), [500]);
      // A job run again (its worker died before it could finish) does not send what was delivered; a message gone since is skipped.
      const sent = received().length;
      const again = await t.services.webhooks.deliver({ messageIds: [...made.map((m) => m.id), 'msg_gone'] });
      assert.equal(again.status, '6 already delivered, 1 gone');
      assert.equal(received().length, sent);
    });

    test('API keys need the webhooks scope', async () => {
      const key = async (scopes: string[]) => (await t.api('POST', '/v1/api-keys', { token: u.accessToken, body: { name: 'hooks', scopes } })).body.key as string;
      const denied = await t.api('GET', '/v1/webhooks/endpoints', { token: await key(['chat']) });
      assert.equal(denied.status, 403);
      assert.equal(denied.body.code, 'insufficient_scope');
      assert.equal((await t.api('GET', '/v1/webhooks/endpoints', { token: await key(['webhooks']) })).status, 200);
    });

    test('an endpoint failing for the whole window is disabled, and its owner told (a high-priority notification, in-app and email)', async () => {
      const told: Array<{ endpointId: string }> = [];
      const sub = await t.deps.bus.subscribe('test-webhook-disabled', ['webhook.endpoint.disabled'], (e) => void told.push(e.payload));
      try {
        const endpoint = await register(u, '/down');
        await testSend(endpoint.id);
        const res = await eventually(async () => {
          const got = await t.api('GET', `/v1/webhooks/endpoints/${endpoint.id}`, { token: u.accessToken });
          assert.equal(got.body.disabled, true);
          return got;
        }, 15_000);
        assert.equal(res.body.disabledReason, 'failing');
        await eventually(() => assert.ok(told.some((p) => p.endpointId === endpoint.id)));
        const notice = await eventually(async () => {
          const inbox = await t.api('GET', '/v1/notifications?limit=100', { token: u.accessToken });
          const found = inbox.body.data.filter((n: any) => n.category === 'webhook.disabled' && n.data.endpointId === endpoint.id);
          assert.equal(found.length, 1);
          return found[0];
        });
        assert.equal(notice.priority, 'high');
        assert.equal(notice.data.url, endpoint.url);
        assert.match(notice.body, /disabled/);
        assert.equal(notice.channels.inApp.status, 'sent');
        assert.ok(['queued', 'sent'].includes(notice.channels.email.status), JSON.stringify(notice.channels));
        // Enabled again by its owner: the window starts over.
        const enabled = await t.api('PATCH', `/v1/webhooks/endpoints/${endpoint.id}`, { token: u.accessToken, body: { disabled: false } });
        assert.equal(enabled.body.disabled, false);
        assert.equal(enabled.body.failingSince, null);
      } finally {
        await sub.close();
      }
    });
  });

  describe(`webhooks: an endpoint disabled while its message waits [${backend}]`, () => {
    let t: TestApp;
    let receiver: Receiver;
    let u: TestUser;
    before(async () => {
      receiver = await startReceiver({});
      // No worker yet: the message waits in the queue while its endpoint is disabled.
      t = await startApp({ backend, env: ENV, worker: false });
      u = await createUser(t);
    });
    after(async () => {
      await t.close();
      await receiver.close();
    });

    test('its attempt sends nothing and fails the message, the reason logged; enabled again, a replay delivers it', async () => {
      const created = await t.api('POST', '/v1/webhooks/endpoints', { token: u.accessToken, body: { url: `${receiver.url}/waiting`, events: ['file.ready'] } });
      assert.equal(created.status, 201, created.text);
      const message = await t.api('POST', `/v1/webhooks/endpoints/${created.body.id}/test`, { token: u.accessToken });
      assert.equal(message.status, 202, message.text);
      await t.api('PATCH', `/v1/webhooks/endpoints/${created.body.id}`, { token: u.accessToken, body: { disabled: true } });
      const status = async () => (await t.api('GET', `/v1/webhooks/messages/${message.body.id}`, { token: u.accessToken })).body.status;
      const attempts = async () => (await t.api('GET', `/v1/webhooks/messages/${message.body.id}/attempts`, { token: u.accessToken })).body.data;
      const worker = await startWorker(t.deps);
      try {
        await eventually(async () => assert.equal(await status(), 'failed'));
        assert.deepEqual((await attempts()).map((a: any) => [a.attempt, a.statusCode, a.responseExcerpt, a.error]), [[1, null, null, 'Endpoint disabled (by its owner)']]);
        assert.equal(receiver.on('/waiting').length, 0);

        await t.api('PATCH', `/v1/webhooks/endpoints/${created.body.id}`, { token: u.accessToken, body: { disabled: false } });
        assert.equal((await t.api('POST', `/v1/webhooks/messages/${message.body.id}/replay`, { token: u.accessToken })).status, 202);
        await eventually(async () => assert.equal(await status(), 'delivered'));
        assert.equal(receiver.on('/waiting').length, 1);
      } finally {
        await worker.stop();
      }
    });
  });

  describe(`webhooks without private addresses [${backend}]`, () => {
    let t: TestApp;
    let u: TestUser;
    before(async () => {
      t = await startApp({ backend });
      u = await createUser(t);
    });
    after(() => t.close());

    test('loopback, private, link-local and IPv4-mapped addresses, and port 0, are refused at registration', async () => {
      for (const url of ['http://127.0.0.1:8080/hook', 'http://localhost/hook', 'http://10.1.2.3/', 'http://169.254.169.254/latest', 'http://[::1]/', 'http://[::ffff:127.0.0.1]/', 'http://[fd00::1]/', 'http://100.64.0.1/']) {
        const res = await t.api('POST', '/v1/webhooks/endpoints', { token: u.accessToken, body: { url, events: ['file.ready'] } });
        assert.equal(res.status, 400, `${url}: ${res.text}`);
        assert.equal(res.body.code, 'webhook_url_private', url);
      }
      const portless = await t.api('POST', '/v1/webhooks/endpoints', { token: u.accessToken, body: { url: 'http://8.8.8.8:0/hook', events: ['file.ready'] } });
      assert.deepEqual([portless.status, portless.body.code], [400, 'webhook_url_invalid'], 'port 0: nothing could be delivered there');
    });

    test('the address is checked again at delivery: a host that now points inside is not reached', async () => {
      const receiver = await startReceiver({});
      try {
        // A public address at registration (a literal: no DNS needed), then the host "rebinds" to loopback.
        const created = await t.api('POST', '/v1/webhooks/endpoints', { token: u.accessToken, body: { url: 'http://8.8.8.8/hook', events: ['file.ready'] } });
        assert.equal(created.status, 201, created.text);
        await t.deps.db.execute(sql`update webhook_endpoints set url = ${receiver.url + '/inside'} where id = ${created.body.id}`);
        const message = (await t.api('POST', `/v1/webhooks/endpoints/${created.body.id}/test`, { token: u.accessToken })).body;
        const [first] = await eventually(async () => {
          const a = (await t.api('GET', `/v1/webhooks/messages/${message.id}/attempts`, { token: u.accessToken })).body.data;
          assert.ok(a.length >= 1);
          return a;
        });
        assert.equal(first.statusCode, null);
        assert.match(first.error, /private/);
        assert.equal(receiver.received.length, 0);
      } finally {
        await receiver.close();
      }
    });
  });
}

test('a receiver answering 101 Switching Protocols fails the attempt at once, not by the timeout', async () => {
  const server = net.createServer((socket) => {
    socket.on('error', () => {});
    socket.once('data', () => socket.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n'));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  try {
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`;
    const result = await post({ url, headers: {}, body: '{}', timeoutMs: 60_000, allowPrivate: true });
    assert.deepEqual({ ok: result.ok, statusCode: result.statusCode, error: result.error }, { ok: false, statusCode: 101, error: 'HTTP 101' });
  } finally {
    server.close();
  }
});

test('the private-address rule covers IPv4, IPv6 and IPv4 inside IPv6', () => {
  for (const a of ['127.0.0.1', '10.0.0.1', '172.31.255.255', '192.168.1.1', '169.254.169.254', '100.64.0.1', '0.0.0.0', '224.0.0.1', '::1', '::', 'fe80::1', 'fd12::1', 'fc00::1', '::ffff:127.0.0.1', '::ffff:7f00:1', '::ffff:a9fe:a9fe', '64:ff9b::a00:1', 'not-an-ip'])
    assert.equal(isPrivateAddress(a), true, a);
  for (const a of ['8.8.8.8', '1.1.1.1', '172.32.0.1', '2606:4700:4700::1111', '::ffff:8.8.8.8']) assert.equal(isPrivateAddress(a), false, a);
});
