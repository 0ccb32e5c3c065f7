import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { asc, eq } from 'drizzle-orm';
import { METRIC_MODELS_MAX } from '../../../src/modules/usage/metering.ts';
import { usageEvents } from '../../../src/modules/usage/schema.ts';
import { backends, type TestApp } from '../../support/app.ts';
import { eventually } from '../../support/eventually.ts';
import { createUser, type TestUser } from '../../support/factories.ts';
import { readSse } from '../../support/sse.ts';
import { chatAs, useChat } from '../chat/generation-fixture.ts';

// gpt-4o-mini in the built-in catalog: $0.15 / $0.60 per million input / output tokens, $0.075 cached.
const costOf = (input: number, output: number, cached = 0) => Math.round(((input - cached) * 150_000 + cached * 75_000 + output * 600_000) / 1_000_000);

async function newKey(t: TestApp, u: TestUser, scopes = ['chat', 'usage:read']) {
  const res = await t.api('POST', '/v1/api-keys', { token: u.accessToken, body: { name: 'k', scopes } });
  assert.equal(res.status, 201, res.text);
  return res.body as { id: string; key: string };
}

const complete = (t: TestApp, key: string, body: Record<string, unknown> = {}) =>
  t.api('POST', '/v1/chat/completions', { token: key, body: { model: 'openai:gpt-4o-mini', messages: [{ role: 'user', content: 'Hi' }], ...body } });

async function eventsOf(t: TestApp, userId: string) {
  await t.services.usage.recorder.flush();
  return t.deps.db.select().from(usageEvents).where(eq(usageEvents.userId, userId)).orderBy(asc(usageEvents.occurredAt));
}

for (const backend of backends()) {
  describe(`metering [${backend}]`, () => {
    const f = useChat(backend);

    test('a gateway call writes one usage event with tokens, exact cost, latency and the key', async () => {
      const u = await createUser(f.t);
      const { id: keyId, key } = await newKey(f.t, u);
      f.openai.script({ reply: 'Hello.', usage: { input: 1000, output: 500, cached: 200 } });
      assert.equal((await complete(f.t, key)).status, 200);
      const [e, ...rest] = await eventsOf(f.t, u.id);
      assert.equal(rest.length, 0);
      assert.equal(e!.source, 'gateway');
      assert.equal(e!.apiKeyId, keyId);
      assert.equal(e!.provider, 'openai');
      assert.equal(e!.model, 'gpt-4o-mini');
      assert.deepEqual([e!.inputTokens, e!.outputTokens, e!.cachedTokens], [1000, 500, 200]);
      assert.equal(e!.costMicros, 435, '800 × 0.15 + 200 × 0.075 + 500 × 0.60 micro-dollars, exactly');
      assert.equal(e!.status, 'ok');
      assert.ok(e!.latencyMs >= 0 && e!.ttftMs !== null);
      assert.match(e!.promptHash!, /^[0-9a-f]{16}$/);
      assert.deepEqual(e!.attempts, []);
    });

    test('a fallback records the failed attempts; a chain that fails entirely is metered as failed', async () => {
      const u = await createUser(f.t);
      const { key } = await newKey(f.t, u);
      f.anthropic.script({ status: 500 });
      f.openai.script({ reply: 'Saved by the fallback.', usage: { input: 10, output: 5 } });
      assert.equal((await complete(f.t, key, { model: 'anthropic:claude-sonnet-4-5,openai:gpt-4o-mini' })).status, 200);
      f.openai.script({ status: 500 });
      assert.equal((await complete(f.t, key)).status, 502);
      const [ok, failed] = await eventsOf(f.t, u.id);
      assert.equal(ok!.status, 'ok');
      assert.equal(ok!.provider, 'openai');
      assert.deepEqual(ok!.attempts.map((a) => [a.provider, a.code]), [['anthropic', 'provider_error']]);
      assert.equal(failed!.status, 'failed');
      assert.equal(failed!.inputTokens + failed!.outputTokens, 0, 'nothing billed before the first token');
      assert.equal(failed!.attempts.length, 1);
    });

    test('chat answers and their titles are metered with the conversation, message and project', async () => {
      const u = await createUser(f.t);
      const project = await f.t.api('POST', '/v1/projects', { token: u.accessToken, body: { name: 'Metered' } });
      assert.equal(project.status, 201, project.text);
      const chat = chatAs(f.t, u);
      const c = await chat.conversation({ projectId: project.body.id });
      f.openai.script({ reply: 'An answer.', usage: { input: 40, output: 8 } });
      const res = await chat.send(c, { content: 'A question' });
      assert.equal(res.status, 201, res.text);
      // The title is generated in the background after the first exchange.
      const events = await eventually(async () => {
        const all = await eventsOf(f.t, u.id);
        assert.equal(all.length, 2);
        return all;
      });
      const answer = events.find((e) => e.source === 'chat')!;
      const title = events.find((e) => e.source === 'title')!;
      assert.equal(answer.conversationId, c);
      assert.equal(answer.messageId, res.body.id);
      assert.equal(answer.projectId, project.body.id);
      assert.equal(answer.costMicros, costOf(40, 8));
      assert.equal(answer.costMicros, res.body.costMicros, 'the message and the usage event agree');
      assert.equal(title.conversationId, c);
      assert.equal(title.messageId, null);
    });

    test('a cancelled answer is metered as cancelled with the output it produced', async () => {
      const u = await createUser(f.t);
      const chat = chatAs(f.t, u);
      const c = await chat.conversation();
      f.openai.script({ chunks: Array.from({ length: 50 }, () => 'word '), delayMs: 20 });
      const res = await chat.sendSse(c, { content: 'Talk a lot' });
      const events = readSse(res);
      const created = (await events.next()).value!;
      assert.equal(created.event, 'message.created');
      const assistantId: string = created.data.assistantMessageId;
      for (let deltas = 0; deltas < 3; ) if ((await events.next()).value!.event === 'delta') deltas++;
      assert.equal((await chat.cancel(c, assistantId)).status, 200);
      await events.return(undefined);
      const [e] = await eventually(async () => {
        const all = await eventsOf(f.t, u.id);
        assert.equal(all.length, 1);
        return all;
      });
      assert.equal(e!.status, 'cancelled');
      assert.equal(e!.messageId, assistantId);
      assert.ok(e!.outputTokens > 0, 'the words already streamed are counted');
    });

    test('events reach the database within the flush interval, without a flush or a shutdown', async () => {
      const u = await createUser(f.t);
      const { key } = await newKey(f.t, u);
      f.openai.script({ reply: 'x', usage: { input: 3, output: 1 } });
      assert.equal((await complete(f.t, key)).status, 200);
      const started = Date.now();
      await eventually(async () => assert.equal((await f.t.deps.db.select().from(usageEvents).where(eq(usageEvents.userId, u.id))).length, 1), 5_000);
      assert.ok(Date.now() - started < 1_000 + 1_500, 'USAGE_FLUSH_INTERVAL_MS is 1 s (the slack is for a loaded machine)');
    });

    test('GET /v1/usage: totals and groups, only the caller\'s own, costs add up exactly', async () => {
      const u = await createUser(f.t);
      const other = await createUser(f.t);
      const { id: keyId, key } = await newKey(f.t, u);
      const { key: otherKey } = await newKey(f.t, other);
      const calls = [
        [1000, 500, 200],
        [333, 77, 0],
        [1, 1, 0],
      ] as const;
      for (const [input, output, cached] of calls) {
        f.openai.script({ reply: 'x', usage: { input, output, cached } });
        assert.equal((await complete(f.t, key)).status, 200);
      }
      f.openai.script({ reply: 'x', usage: { input: 9999, output: 9999 } });
      assert.equal((await complete(f.t, otherKey)).status, 200);
      await f.t.services.usage.recorder.flush();

      const res = await f.t.api('GET', '/v1/usage?groupBy=model,api_key', { token: key });
      assert.equal(res.status, 200, res.text);
      const expected = calls.reduce((s, [i, o, c]) => s + costOf(i, o, c), 0);
      assert.equal(res.body.totals.requests, 3);
      assert.equal(res.body.totals.inputTokens, 1334);
      assert.equal(res.body.totals.outputTokens, 578);
      assert.equal(res.body.totals.costMicros, expected);
      assert.equal(res.body.totals.cost, `0.000${String(expected).padStart(3, '0')}`);
      assert.deepEqual(res.body.data.map((r: any) => [r.provider, r.model, r.apiKeyId, r.requests]), [['openai', 'gpt-4o-mini', keyId, 3]]);

      const byDay = await f.t.api('GET', '/v1/usage', { token: u.accessToken });
      assert.deepEqual(byDay.body.data.map((r: any) => [r.day, r.requests]), [[new Date().toISOString().slice(0, 10), 3]]);
      assert.deepEqual(byDay.body.groupBy, ['day']);

      for (const bad of ['groupBy=user', 'groupBy=nope', 'from=2026-13-01', 'from=2026-02-01&to=2026-01-01', 'from=2020-01-01&to=2026-01-01', 'projectId=nope']) {
        const r = await f.t.api('GET', `/v1/usage?${bad}`, { token: u.accessToken });
        assert.equal(r.status, 400, `${bad}: ${r.text}`);
        assert.match(r.headers.get('content-type')!, /problem\+json/);
      }
      const noScope = await newKey(f.t, u, ['chat']);
      assert.equal((await f.t.api('GET', '/v1/usage', { token: noScope.key })).status, 403);
    });

    test('Prometheus counts tokens, cost and calls by provider and model', async () => {
      const u = await createUser(f.t);
      const { key } = await newKey(f.t, u);
      const read = async () => (await f.t.api('GET', '/metrics')).text;
      const value = (text: string, name: string) => Number(new RegExp(`^${name.replace(/[{}]/g, '\\$&')} (\\S+)$`, 'm').exec(text)?.[1] ?? 0);
      const before = await read();
      f.openai.script({ reply: 'x', usage: { input: 1000, output: 500, cached: 200 } });
      assert.equal((await complete(f.t, key)).status, 200);
      const after = await read();
      const delta = (name: string) => value(after, name) - value(before, name);
      assert.equal(delta('parley_ai_tokens_total{provider="openai",model="gpt-4o-mini",kind="input"}'), 1000);
      assert.equal(delta('parley_ai_tokens_total{provider="openai",model="gpt-4o-mini",kind="output"}'), 500);
      assert.equal(delta('parley_ai_cost_micro_dollars_total{provider="openai",model="gpt-4o-mini"}'), 435);
      assert.equal(delta('parley_ai_calls_total{provider="openai",model="gpt-4o-mini",status="ok"}'), 1);
    });

    test('models named beyond the first few hundred count as model "other": made-up names cannot grow /metrics without bound', async () => {
      const u = await createUser(f.t);
      const meter = { source: 'gateway' as const, userId: u.id };
      for (let i = 0; i < METRIC_MODELS_MAX + 20; i++) {
        const call = await f.t.services.usage.metering.begin(meter, { chain: ['openai:gpt-4o-mini'], messages: [{ role: 'user', content: 'x' }] }, { micros: 0, tokens: 0 });
        await call.end({ status: 'failed', provider: 'openai', model: `made-up-${i}`, usage: { inputTokens: 0, outputTokens: 0 }, costMicros: null, latencyMs: 1, ttftMs: null, attempts: [] }, meter);
      }
      const calls = (await f.t.api('GET', '/metrics')).text.split('\n').filter((l) => l.startsWith('parley_ai_calls_total{'));
      const series = calls.filter((l) => l.includes('model="made-up-'));
      assert.ok(series.length > 0 && series.length <= METRIC_MODELS_MAX, `${series.length} series of made-up models`);
      const other = calls.find((l) => l.startsWith('parley_ai_calls_total{provider="openai",model="other",status="failed"}'));
      assert.ok(other && Number(other.split(' ').pop()) >= 20, other);
    });

    test('API requests are counted per route and user', async () => {
      const u = await createUser(f.t);
      for (let i = 0; i < 3; i++) assert.equal((await f.t.api('GET', '/v1/users/me', { token: u.accessToken })).status, 200);
      await f.t.services.usage.recorder.flush();
      const { apiRequestsDaily } = await import('../../../src/modules/usage/schema.ts');
      const rows = await f.t.deps.db.select().from(apiRequestsDaily).where(eq(apiRequestsDaily.userId, u.id));
      const me = rows.find((r) => r.route === '/v1/users/me' && r.method === 'GET');
      assert.equal(me?.requests, 3);
      assert.ok(me!.bytesOut > 0);
    });
  });
}
