import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { after, describe, test } from 'node:test';
import { createUser } from '../support/factories.ts';
import { eventually } from '../support/eventually.ts';
import { timed } from '../support/outage.ts';
import { freePort, runCli, tempDataDir } from '../support/process.ts';
import { REDIS_SERVER, startRedisServer, type RedisServer } from '../support/redis.ts';
import type { ApiResponse, TestApp } from '../support/app.ts';
import { chatAs, startChat, type ChatFixture } from '../modules/chat/generation-fixture.ts';
import { startReceiver } from '../modules/webhooks/receiver.ts';

const skip = !process.env.DATABASE_URL ? 'needs PostgreSQL (DATABASE_URL)' : !existsSync(REDIS_SERVER) ? `needs ${REDIS_SERVER}` : false;

/**
 * A generous bound: what matters is that nothing waits out ioredis' reconnect
 * cycles (10–20 s before); the one-second target is in docs/redis-outage.md.
 */
const FAST_MS = 3_000;

function assertUnavailable(res: ApiResponse, what: string) {
  assert.equal(res.status, 503, `${what}: ${res.text}`);
  assert.match(res.headers.get('content-type') ?? '', /^application\/problem\+json/);
  assert.equal(res.body.code, 'dependency_unavailable');
  assert.equal(res.body.detail, 'Redis is unavailable');
  assert.ok(Number(res.headers.get('retry-after')) > 0, `${what}: a Retry-After header`);
}

describe('Redis outage [postgres]', { skip }, () => {
  let redis: RedisServer | undefined;
  let chat: ChatFixture | undefined;
  let receiver: Awaited<ReturnType<typeof startReceiver>> | undefined;
  after(async () => {
    await chat?.close();
    await redis?.stop();
    await receiver?.close();
  });

  test('while Redis is down: reads and sign-in are served, a message send is a quick 503; all recovers when it returns', async () => {
    const port = await freePort();
    redis = await startRedisServer(port);
    // Request limits on, so every authenticated request counts against a Redis limiter.
    chat = await startChat('postgres', { REDIS_URL: redis.url, RATE_LIMIT_ENABLED: 'true', WEBHOOKS_ALLOW_PRIVATE: 'true' });
    const t: TestApp = chat.t;
    const u = await createUser(t);
    // Events announced during the outage: held by the process that announced them, published once Redis is back.
    receiver = await startReceiver({});
    const endpoint = await t.api('POST', '/v1/webhooks/endpoints', { token: u.accessToken, body: { url: `${receiver.url}/events`, events: ['conversation.created'] } });
    assert.equal(endpoint.status, 201, endpoint.text);
    const c = chatAs(t, u);
    const conversation = await c.conversation();
    const login = () => t.api('POST', '/v1/auth/login', { body: { email: u.email, password: u.password } });
    const send = (content: string) => c.send(conversation, { content });
    const before = await send('Before the outage');
    assert.equal(before.status, 201, before.text);

    await redis.stop();
    // The app has seen its connection close (a request racing that would find Redis gone midway).
    await eventually(() => assert.notEqual(t.deps.redis!.status, 'ready'));

    const me = await timed(() => t.api('GET', '/v1/users/me', { token: u.accessToken }));
    assert.equal(me.status, 200, me.text);
    assert.equal(me.body.id, u.id);
    assert.ok(me.ms < FAST_MS, `GET /v1/users/me took ${me.ms} ms`);

    const signIn = await timed(login);
    assert.equal(signIn.status, 200, signIn.text);
    assert.ok(signIn.body.accessToken);
    assert.ok(signIn.ms < FAST_MS, `POST /v1/auth/login took ${signIn.ms} ms`);

    const refused = await timed(() => send('During the outage'));
    assertUnavailable(refused, 'POST …/messages');
    assert.ok(refused.ms < FAST_MS, `POST …/messages took ${refused.ms} ms`);
    const branch = await c.branch(conversation);
    assert.deepEqual(
      branch.data.map((m: { role: string }) => m.role),
      ['user', 'assistant'],
      'the refused message left nothing behind',
    );

    // Following an answer needs the stream buffer too: a status, not an event stream that breaks.
    const resume = await c.stream(conversation, before.body.id);
    assert.equal(resume.status, 503);
    assert.equal(((await resume.json()) as { code: string }).code, 'dependency_unavailable');
    // Jobs live in BullMQ, whose commands would wait for Redis: refused at once instead.
    assertUnavailable(await t.api('GET', `/v1/jobs/${randomUUID()}`, { token: u.accessToken }), 'GET /v1/jobs/:id');

    const createdMeanwhile = [await c.conversation(), await c.conversation()];

    const ready = await timed(() => t.api('GET', '/ready'));
    assert.equal(ready.status, 503);
    assert.deepEqual(ready.body.checks, { database: 'ok', redis: 'down', storage: 'ok' });
    assert.ok(ready.ms < FAST_MS, `GET /ready took ${ready.ms} ms`);

    redis = await startRedisServer(port);

    await eventually(async () => assert.equal((await t.api('GET', '/ready')).status, 200), 20_000);
    const recovered = await eventually(async () => {
      const res = await send('After the outage');
      assert.equal(res.status, 201, res.text);
      return res;
    }, 20_000);
    assert.equal(recovered.body.status, 'complete');
    assert.equal((await t.api('GET', '/v1/users/me', { token: u.accessToken })).status, 200);
    assert.equal((await login()).status, 200);
    // The conversations made during the outage reach the webhook (deliveries run side by side, so in any order).
    const delivered = await eventually(() => {
      const ids = receiver!.on('/events').map((r) => JSON.parse(r.body).data.conversationId as string);
      assert.deepEqual(ids.filter((id) => createdMeanwhile.includes(id)).sort(), [...createdMeanwhile].sort());
      return ids;
    }, 20_000);
    assert.ok(delivered.includes(conversation), 'and the one made before it');

    // Down again, the app closes all the same (a hung close would hold the test to its timeout).
    await redis.stop();
    await chat.close();
    chat = undefined;
  });
});

describe('Redis down when Parley starts', () => {
  test('the start stops with a message naming REDIS_URL and the cause, not a stack of MaxRetriesPerRequestError', async () => {
    const port = await freePort(); // nothing listens there
    const data = tempDataDir();
    try {
      const res = await runCli(['start', '--processes', '1'], { PARLEY_DATA_DIR: data.dir, REDIS_URL: `redis://127.0.0.1:${port}` });
      assert.equal(res.code, 1, res.stderr);
      assert.match(res.stderr, new RegExp(`Redis at 127\\.0\\.0\\.1:${port} \\(REDIS_URL\\) cannot be reached \\(connect ECONNREFUSED`));
      assert.doesNotMatch(res.stderr, /MaxRetriesPerRequest|\n\s+at /);
      assert.doesNotMatch(res.stdout, /the rest is served without it/, 'no promise of serving without it');
    } finally {
      data.remove();
    }
  });
});
