import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { backends, startApp, type TestApp } from '../../support/app.ts';
import { eventually } from '../../support/eventually.ts';
import { createUser, type TestUser } from '../../support/factories.ts';
import { startReceiver, type Received } from './receiver.ts';

// Loopback receivers; a timeout long enough that no attempt fails on a loaded machine (each message must take exactly one), the retry schedule shrunk.
const ENV = { WEBHOOKS_ALLOW_PRIVATE: 'true', WEBHOOKS_TIMEOUT_MS: '10000', WEBHOOKS_RETRY_SCALE: '0.001' };

/**
 * The most requests that arrived within any one second. The limit holds in each second of the clock, so a second
 * that straddles two may see twice the rate, never more (unless a request took a second longer on its way than
 * one sent a second later): no bound on how long anything takes.
 */
const mostInASecond = (received: Received[]) => Math.max(...received.map((r) => received.filter((o) => o.at >= r.at && o.at < r.at + 1000).length));

for (const backend of backends()) {
  describe(`webhooks: an endpoint's rate limit [${backend}]`, () => {
    let t: TestApp;
    let receiver: Awaited<ReturnType<typeof startReceiver>>;
    /** Endpoint ids the webhook rate limiters were asked about, once per token. */
    const asked: string[] = [];

    before(async () => {
      receiver = await startReceiver({});
      t = await startApp({ backend, env: ENV });
      // Watched: every token the webhooks service takes goes through the limiter factory it was given (the app's).
      const consumeMany = t.deps.limiters.consumeMany;
      t.deps.limiters.consumeMany = (hits) => {
        // Keyed `<endpoint id>:<second>`.
        for (const h of hits) if (h.limiter.spec.name.startsWith('webhook-endpoint:')) asked.push(h.key.split(':')[0]!);
        return consumeMany(hits);
      };
    });
    after(async () => {
      await t.close();
      await receiver.close();
    });

    const register = async (u: TestUser, path: string, body: Record<string, unknown> = {}) => {
      const res = await t.api('POST', '/v1/webhooks/endpoints', { token: u.accessToken, body: { url: receiver.url + path, events: ['job.failed'], ...body } });
      assert.equal(res.status, 201, res.text);
      return res.body as { id: string; rateLimit: number | null };
    };
    const emit = (u: TestUser, n: number, tag: string) =>
      t.services.webhooks.emitMany(Array.from({ length: n }, (_, i) => ({ userId: u.id, eventType: 'job.failed' as const, payload: { jobId: `${tag}-${i}` }, sourceEventId: `${tag}-${i}` })));
    const messages = async (u: TestUser, endpointId: string) =>
      (await t.api('GET', `/v1/webhooks/endpoints/${endpointId}/messages?limit=100`, { token: u.accessToken })).body.data as Array<{ id: string; status: string }>;
    const attempts = async (u: TestUser, messageId: string) =>
      (await t.api('GET', `/v1/webhooks/messages/${messageId}/attempts`, { token: u.accessToken })).body.data as Array<{ attempt: number; statusCode: number | null }>;
    /** The delivery jobs of these messages that the rate limit held back (scheduled again, the attempt not made). */
    const heldBack = async (ids: string[]) =>
      (await t.deps.queue.list({ queue: 'webhooks.deliver', limit: 1000 })).jobs.filter((j) => {
        const data = j.data as { messageId?: string; waits?: number };
        return data.waits !== undefined && ids.includes(data.messageId!);
      });

    test('rateLimit is set at registration and by PATCH (null lifts it), and returned; 0, 10001, 1.5 and "x" are 400 problems that change nothing', async () => {
      const u = await createUser(t);
      assert.equal((await register(u, '/plain')).rateLimit, null, 'no limit by default');
      const endpoint = await register(u, '/limited', { rateLimit: 5 });
      assert.equal(endpoint.rateLimit, 5);
      const path = `/v1/webhooks/endpoints/${endpoint.id}`;
      assert.equal((await t.api('GET', path, { token: u.accessToken })).body.rateLimit, 5);
      for (const rateLimit of [0, 10_001, 1.5, 'x', -1]) {
        for (const [method, url, body] of [
          ['POST', '/v1/webhooks/endpoints', { url: receiver.url + '/bad', events: ['job.failed'], rateLimit }],
          ['PATCH', path, { rateLimit }],
        ] as const) {
          const res = await t.api(method, url, { token: u.accessToken, body });
          assert.equal(res.status, 400, `${method} ${JSON.stringify(rateLimit)}: ${res.text}`);
          assert.match(res.headers.get('content-type') ?? '', /application\/problem\+json/);
        }
      }
      assert.equal((await t.api('GET', path, { token: u.accessToken })).body.rateLimit, 5, 'unchanged by the refused PATCHes');
      assert.equal((await t.api('PATCH', path, { token: u.accessToken, body: { rateLimit: 10_000 } })).body.rateLimit, 10_000);
      assert.equal((await t.api('PATCH', path, { token: u.accessToken, body: { rateLimit: null } })).body.rateLimit, null);
      assert.equal((await t.api('GET', path, { token: u.accessToken })).body.rateLimit, null);
    });

    test('8 messages made at once for an endpoint limited to 2 a second: all delivered, 2 a window, each in one attempt (waiting used none)', async () => {
      const u = await createUser(t);
      const endpoint = await register(u, '/two-a-second', { rateLimit: 2 });
      assert.equal(await emit(u, 8, 'burst'), 8);
      const made = await eventually(async () => {
        const all = await messages(u, endpoint.id);
        assert.deepEqual(all.map((m) => m.status), Array(8).fill('delivered'));
        return all;
      }, 20_000);
      const received = receiver.on('/two-a-second');
      assert.deepEqual(received.map((r) => r.headers['webhook-id']).toSorted(), made.map((m) => m.id).toSorted(), 'each message sent once');
      assert.ok(mostInASecond(received) <= 4, `at most twice the rate in any second: ${received.map((r) => r.at - received[0]!.at).join(', ')} ms`);
      for (const m of made) assert.deepEqual((await attempts(u, m.id)).map((a) => [a.attempt, a.statusCode]), [[1, 200]], m.id);
      // The 6 beyond the first window's 2 were each scheduled again as a job of their own, the same attempt of the same chain.
      const held = await heldBack(made.map((m) => m.id));
      assert.ok(new Set(held.map((j) => (j.data as { messageId: string }).messageId)).size >= 6, JSON.stringify(held.map((j) => j.data)));
      assert.ok(held.every((j) => (j.data as { attempt: number; run: string }).attempt === 1 && (j.data as { run: string }).run === 'first'));
      assert.equal(asked.filter((id) => id === endpoint.id).length, 8 + held.length, 'a token asked for by each attempt made and each held back');
      // With Redis, counted there: the limit holds across every process.
      if (t.deps.redis) assert.ok(Number(await t.deps.redis.get(`${t.deps.config.redisPrefix}rl:webhook-endpoint-queue:2:${endpoint.id}`)) >= 6);
    });

    test('test sends and replays wait their turn too', async () => {
      const u = await createUser(t);
      const endpoint = await register(u, '/one-a-second', { rateLimit: 1 });
      const sent = await Promise.all([1, 2, 3].map(async () => (await t.api('POST', `/v1/webhooks/endpoints/${endpoint.id}/test`, { token: u.accessToken })).body.id as string));
      await eventually(async () => assert.deepEqual((await messages(u, endpoint.id)).map((m) => m.status), Array(3).fill('delivered')), 20_000);
      assert.ok(mostInASecond(receiver.on('/one-a-second')) <= 2, 'test sends');

      const replayed = await Promise.all(sent.map((id) => t.api('POST', `/v1/webhooks/messages/${id}/replay`, { token: u.accessToken })));
      assert.deepEqual(replayed.map((r) => r.status), [202, 202, 202]);
      await eventually(async () => {
        assert.equal(receiver.on('/one-a-second').length, 6);
        assert.deepEqual((await messages(u, endpoint.id)).map((m) => m.status), Array(3).fill('delivered'));
      }, 20_000);
      assert.ok(mostInASecond(receiver.on('/one-a-second').slice(3)) <= 2, 'replays');
      for (const id of sent) assert.deepEqual((await attempts(u, id)).map((a) => [a.attempt, a.statusCode]), [[1, 200], [1, 200]], id);
    });

    test('an endpoint whose limit was lifted (or never had one) asks no limiter: nothing waits', async () => {
      const u = await createUser(t);
      const endpoint = await register(u, '/lifted', { rateLimit: 1 });
      await t.api('POST', `/v1/webhooks/endpoints/${endpoint.id}/test`, { token: u.accessToken });
      await eventually(() => assert.equal(receiver.on('/lifted').length, 1));
      assert.equal(asked.filter((id) => id === endpoint.id).length, 1, 'limited: its delivery took a token');

      assert.equal((await t.api('PATCH', `/v1/webhooks/endpoints/${endpoint.id}`, { token: u.accessToken, body: { rateLimit: null } })).body.rateLimit, null);
      const plain = await register(u, '/never-limited');
      assert.equal(await emit(u, 4, 'lifted'), 8);
      const made = await eventually(async () => {
        const all = [...(await messages(u, endpoint.id)), ...(await messages(u, plain.id))];
        assert.deepEqual(all.map((m) => m.status), Array(9).fill('delivered'));
        return all;
      });
      assert.equal(asked.filter((id) => id === endpoint.id).length, 1, 'no token asked for once lifted');
      assert.equal(asked.filter((id) => id === plain.id).length, 0);
      assert.deepEqual(await heldBack(made.map((m) => m.id)), []);
    });
  });
}
