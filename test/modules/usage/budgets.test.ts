import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import pg from 'pg';
import { backends, type TestApp } from '../../support/app.ts';
import { eventually } from '../../support/eventually.ts';
import { createUser, type TestUser } from '../../support/factories.ts';
import { readSse } from '../../support/sse.ts';
import { chatAs, clusterSkip, useChat, type ChatFixture } from '../chat/generation-fixture.ts';

// Each scripted call costs 435 micro-dollars (gpt-4o-mini: 800 × 0.15 + 200 × 0.075 + 500 × 0.60).
const USAGE = { input: 1000, output: 500, cached: 200 };
const COST = 435;

const complete = (t: TestApp, key: string, body: Record<string, unknown> = {}) =>
  t.api('POST', '/v1/chat/completions', { token: key, body: { model: 'openai:gpt-4o-mini', messages: [{ role: 'user', content: 'Hi' }], ...body } });

async function keyOf(t: TestApp, u: TestUser) {
  const res = await t.api('POST', '/v1/api-keys', { token: u.accessToken, body: { name: 'k', scopes: ['chat', 'usage:read'] } });
  assert.equal(res.status, 201, res.text);
  return res.body as { id: string; key: string };
}

async function setUserBudget(f: ChatFixture, admin: TestUser, body: Record<string, unknown>) {
  const res = await f.t.api('PUT', '/v1/admin/budgets', { token: admin.accessToken, body });
  assert.equal(res.status, 200, res.text);
  return res.body;
}

const upstreamCalls = (f: ChatFixture) => f.openai.requests.filter((r) => r.path.endsWith('/chat/completions')).length;

for (const backend of backends()) {
  describe(`budgets [${backend}]`, () => {
    const f = useChat(backend);

    test('over a user\'s daily budget: 402 budget_exceeded with the reset in their timezone, and the provider is not called', async () => {
      const admin = await createUser(f.t, { admin: true });
      const u = await createUser(f.t);
      assert.equal((await f.t.api('PATCH', '/v1/users/me/preferences', { token: u.accessToken, body: { timezone: 'Asia/Tokyo' } })).status, 200);
      const budget = await setUserBudget(f, admin, { userId: u.id, period: 'day', limitUsd: '0.001' });
      assert.equal(budget.limitMicros, 1000);
      assert.equal(budget.limit, '0.001000');
      const { key } = await keyOf(f.t, u);
      f.openai.state.defaults = { reply: 'ok', usage: USAGE };
      for (let i = 0; i < 3; i++) assert.equal((await complete(f.t, key)).status, 200, `call ${i + 1}: ${870 - 435 + i * COST} < 1000 before it`);
      const before = upstreamCalls(f);
      const refused = await complete(f.t, key);
      assert.equal(refused.status, 402, refused.text);
      assert.equal(refused.body.error.code, 'budget_exceeded', 'OpenAI-shaped on the gateway');
      assert.match(refused.body.error.message, /^The daily user budget is used up; it resets at /);
      assert.ok(Number(refused.headers.get('retry-after')) > 0);
      assert.equal(upstreamCalls(f), before, 'never sent upstream');

      const limits = await f.t.api('GET', '/v1/usage/limits', { token: key });
      assert.equal(limits.status, 200, limits.text);
      assert.equal(limits.body.timezone, 'Asia/Tokyo');
      const [l] = limits.body.data;
      assert.equal(l.scope, 'user');
      assert.equal(l.usedMicros, 3 * COST);
      assert.equal(l.used, '0.001305');
      assert.equal(l.usedTokens, 3 * 1500);
      assert.equal(l.reservedMicros, 0);
      const reset = new Date(l.resetsAt);
      assert.equal(reset.getUTCHours(), 15, 'midnight in Tokyo is 15:00 UTC');
      assert.ok(reset.getTime() > Date.now() && reset.getTime() - Date.now() <= 24 * 3600_000);
      assert.equal(refused.body.error.message.includes(l.resetsAt), true);
    });

    test('a chat message over budget is refused with a 402 problem before anything is stored', async () => {
      const admin = await createUser(f.t, { admin: true });
      const u = await createUser(f.t);
      await setUserBudget(f, admin, { userId: u.id, period: 'month', limitTokens: 100 });
      const chat = chatAs(f.t, u);
      const c = await chat.conversation();
      f.openai.state.defaults = { reply: 'ok', usage: USAGE };
      assert.equal((await chat.send(c, { content: 'first' })).status, 201);
      const refused = await chat.send(c, { content: 'second' });
      assert.equal(refused.status, 402, refused.text);
      assert.equal(refused.body.code, 'budget_exceeded');
      assert.equal(refused.body.period, 'month');
      assert.match(refused.headers.get('content-type')!, /problem\+json/);
      assert.equal((await chat.branch(c)).data.length, 2, 'the refused message was not stored');
    });

    test('a chat message is checked against its budget once, with its estimate, before anything is stored; a refused one leaves nothing reserved', async () => {
      const admin = await createUser(f.t, { admin: true });
      const u = await createUser(f.t);
      // Room left (nothing used), but not for this message: ~250 tokens of prompt against a 100-token budget.
      await setUserBudget(f, admin, { userId: u.id, period: 'month', limitTokens: 100 });
      const chat = chatAs(f.t, u);
      const c = await chat.conversation();
      const before = upstreamCalls(f);
      const refused = await chat.send(c, { content: 'word '.repeat(200) });
      assert.equal(refused.status, 402, refused.text);
      assert.equal(refused.body.code, 'budget_exceeded');
      assert.equal((await chat.branch(c)).data.length, 0, 'nothing stored: no question, no failed answer');
      assert.equal(upstreamCalls(f), before, 'never sent upstream');
      const [limit] = (await f.t.api('GET', '/v1/usage/limits', { token: u.accessToken })).body.data;
      assert.equal(limit.reservedTokens, 0, 'the refused reservation holds nothing');

      // A message that fits is admitted on the same reservation its call then draws on: nothing stays reserved after it.
      f.openai.state.defaults = { reply: 'ok', usage: { input: 10, output: 5 } };
      const sent = await chat.send(c, { content: 'short' });
      assert.equal(sent.status, 201, sent.text);
      await f.t.services.generation.idle();
      const [after] = (await f.t.api('GET', '/v1/usage/limits', { token: u.accessToken })).body.data;
      assert.equal(after.reservedTokens, 0);
      assert.equal(after.usedTokens, 15);
    });

    test('owners cap their own API keys; someone else\'s key or budget is not found', async () => {
      const u = await createUser(f.t);
      const other = await createUser(f.t);
      const capped = await keyOf(f.t, u);
      const free = await keyOf(f.t, u);
      const res = await f.t.api('PUT', '/v1/budgets', { token: u.accessToken, body: { scope: 'api_key', subjectId: capped.id, period: 'total', limitUsd: 0.0004 } });
      assert.equal(res.status, 200, res.text);
      assert.equal(res.body.limitMicros, 400);
      f.openai.state.defaults = { reply: 'ok', usage: USAGE };
      assert.equal((await complete(f.t, capped.key)).status, 200);
      assert.equal((await complete(f.t, capped.key)).status, 402);
      assert.equal((await complete(f.t, free.key)).status, 200, 'the user\'s other key is not capped');

      const theirs = await f.t.api('PUT', '/v1/budgets', { token: other.accessToken, body: { scope: 'api_key', subjectId: capped.id, period: 'day', limitUsd: 100 } });
      assert.equal(theirs.status, 404);
      assert.equal((await f.t.api('DELETE', `/v1/budgets/${res.body.id}`, { token: other.accessToken })).status, 404);
      assert.equal((await f.t.api('DELETE', `/v1/budgets/${res.body.id}`, { token: u.accessToken })).status, 204);
      assert.equal((await complete(f.t, capped.key)).status, 200, 'uncapped once the budget is gone');
    });

    test('a deleted API key\'s and project\'s budgets go with them: no longer listed nor applied, the others stay', async () => {
      const admin = await createUser(f.t, { admin: true });
      const u = await createUser(f.t);
      const gone = await keyOf(f.t, u);
      const kept = await keyOf(f.t, u);
      const project = await f.t.api('POST', '/v1/projects', { token: u.accessToken, body: { name: 'Doomed' } });
      assert.equal(project.status, 201, project.text);
      const cap = async (scope: 'api_key' | 'project', subjectId: string, body: Record<string, unknown>) => {
        const res = await f.t.api('PUT', '/v1/budgets', { token: u.accessToken, body: { scope, subjectId, ...body } });
        assert.equal(res.status, 200, res.text);
        return res.body.id as string;
      };
      const goneBudgets = [await cap('api_key', gone.id, { period: 'total', limitUsd: 1 }), await cap('api_key', gone.id, { period: 'day', limitTokens: 5000 })];
      const keptBudget = await cap('api_key', kept.id, { period: 'month', limitUsd: 2 });
      const projectBudget = await cap('project', project.body.id, { period: 'day', limitTokens: 1000 });
      const listed = async () => {
        const res = await f.t.api('GET', '/v1/usage/limits', { token: u.accessToken });
        assert.equal(res.status, 200, res.text);
        return (res.body.data as Array<{ id: string }>).map((l) => l.id).sort();
      };
      const administered = async () => ((await f.t.api('GET', `/v1/admin/budgets?userId=${u.id}`, { token: admin.accessToken })).body.data as Array<{ id: string }>).map((b) => b.id).sort();
      const applied = async (subject: { apiKeyId?: string; projectId?: string }) => (await f.t.services.usage.budgets.entriesFor({ userId: u.id, ...subject })).map((e) => e.budget.id).sort();
      assert.deepEqual(await listed(), [...goneBudgets, keptBudget, projectBudget].sort());
      assert.deepEqual(await applied({ apiKeyId: gone.id }), [...goneBudgets].sort());
      assert.deepEqual(await applied({ projectId: project.body.id }), [projectBudget]);

      assert.equal((await f.t.api('DELETE', `/v1/api-keys/${gone.id}`, { token: u.accessToken })).status, 204);
      await eventually(async () => assert.deepEqual(await listed(), [keptBudget, projectBudget].sort()));
      assert.deepEqual(await administered(), [keptBudget, projectBudget].sort());
      assert.deepEqual(await applied({ apiKeyId: gone.id }), [], 'the checks no longer read them');
      assert.deepEqual(await applied({ apiKeyId: kept.id }), [keptBudget]);

      assert.equal((await f.t.api('DELETE', `/v1/projects/${project.body.id}`, { token: u.accessToken })).status, 204);
      await eventually(async () => assert.deepEqual(await listed(), [keptBudget]));
      assert.deepEqual(await administered(), [keptBudget]);
      assert.deepEqual(await applied({ projectId: project.body.id }), []);

      // The events may come again: nothing more goes, nothing fails.
      assert.equal(await f.t.services.usage.budgets.forgetSubject(u.id, 'api_key', gone.id), 0);
      assert.equal(await f.t.services.usage.budgets.forgetSubject(u.id, 'project', project.body.id), 0);
      assert.deepEqual(await listed(), [keptBudget]);
      f.openai.state.defaults = { reply: 'ok', usage: USAGE };
      assert.equal((await complete(f.t, kept.key)).status, 200, 'the kept key still works under its budget');
    });

    test('a budget set while a call streams counts that call\'s spend, whether its counter was made before the call ended or after', async () => {
      const admin = await createUser(f.t, { admin: true });
      const u = await createUser(f.t);
      const { id: keyId, key } = await keyOf(f.t, u);
      // The stream stays open after its first chunk until the client hangs up: the call is in flight for as long as the test needs.
      f.openai.script({ chunks: ['Half ', 'an ', 'answer'], holdAfter: 1 });
      const hangUp = new AbortController();
      const res = await fetch(`${f.t.url}/v1/chat/completions`, {
        method: 'POST',
        headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'openai:gpt-4o-mini', messages: [{ role: 'user', content: 'Hi' }], stream: true }),
        signal: hangUp.signal,
      });
      assert.equal(res.status, 200);
      const stream = readSse(res);
      assert.equal((await stream.next()).done, false, 'the call is under way');

      // The key's budget is set and its counter made (the limits read) while the call runs; the user's budget is
      // set then too, but its counter is first made after the call ended.
      const own = await f.t.api('PUT', '/v1/budgets', { token: u.accessToken, body: { scope: 'api_key', subjectId: keyId, period: 'day', limitTokens: 1_000_000 } });
      assert.equal(own.status, 200, own.text);
      const during = await f.t.api('GET', '/v1/usage/limits', { token: u.accessToken });
      assert.deepEqual(during.body.data.map((l: any) => [l.id, l.usedTokens, l.reservedTokens]), [[own.body.id, 0, 0]], 'nothing spent yet, and the call reserved nothing against it');
      const mine = await setUserBudget(f, admin, { userId: u.id, period: 'month', limitUsd: 10 });

      hangUp.abort();
      await stream.return(undefined).catch(() => {});
      // A call cut short is billed for what it used: its usage event is the spend both budgets must show.
      const spent = await eventually(async () => {
        await f.t.services.usage.recorder.flush();
        const usage = await f.t.api('GET', `/v1/usage?apiKeyId=${keyId}`, { token: u.accessToken });
        assert.equal(usage.body.totals.requests, 1, usage.text);
        return usage.body.totals as { inputTokens: number; outputTokens: number; costMicros: number };
      });
      assert.ok(spent.inputTokens > 0 && spent.costMicros > 0);
      const limits = await f.t.api('GET', '/v1/usage/limits', { token: u.accessToken });
      const byId = new Map(limits.body.data.map((l: any) => [l.id, l]));
      for (const id of [own.body.id, mine.id]) {
        const l = byId.get(id) as any;
        assert.deepEqual([l.usedTokens, l.usedMicros, l.reservedTokens], [spent.inputTokens + spent.outputTokens, spent.costMicros, 0], `${l.scope} budget: the call counted once`);
      }
    });

    test('a budget set on a key as the key is deleted is refused or goes with the key: never left behind', async () => {
      const admin = await createUser(f.t, { admin: true });
      const u = await createUser(f.t);
      const budgetsOf = async () => (await f.t.api('GET', `/v1/admin/budgets?userId=${u.id}`, { token: admin.accessToken })).body.data as Array<{ id: string; subjectId: string }>;
      const keys = await Promise.all(Array.from({ length: 8 }, () => keyOf(f.t, u)));
      await Promise.all(
        keys.map(async (k) => {
          const [set, deleted] = await Promise.all([
            f.t.api('PUT', '/v1/budgets', { token: u.accessToken, body: { scope: 'api_key', subjectId: k.id, period: 'day', limitTokens: 1000 } }),
            f.t.api('DELETE', `/v1/api-keys/${k.id}`, { token: u.accessToken }),
          ]);
          assert.equal(deleted.status, 204, deleted.text);
          assert.ok(set.status === 200 || (set.status === 404 && set.body.code === 'api_key_not_found'), set.text);
        }),
      );
      // Those set before the deletion went with their key.
      await eventually(async () => assert.deepEqual(await budgetsOf(), []));
    });

    test('a budget whose key is deleted, and its budgets cleared, between the ownership check and the insert is a 404 and leaves nothing', { skip: backend === 'postgres' ? false : 'needs PostgreSQL: a second connection holds the insert back' }, async () => {
      const admin = await createUser(f.t, { admin: true });
      const u = await createUser(f.t);
      const k = await keyOf(f.t, u);
      const budgetsOf = async () => (await f.t.api('GET', `/v1/admin/budgets?userId=${u.id}`, { token: admin.accessToken })).body.data as Array<{ id: string; period: string }>;
      const daily = await f.t.api('PUT', '/v1/budgets', { token: u.accessToken, body: { scope: 'api_key', subjectId: k.id, period: 'day', limitTokens: 1000 } });
      assert.equal(daily.status, 200, daily.text);
      // Another session inserts the same budget and does not commit yet: the PUT passes its ownership check, then
      // its insert waits on that row.
      const other = new pg.Client({ connectionString: f.t.deps.config.databaseUrl });
      await other.connect();
      try {
        await other.query('begin');
        await other.query(`insert into budgets (id, scope, user_id, subject_id, period, limit_tokens) values (gen_random_uuid(), 'api_key', $1, $2, 'month', 5)`, [u.id, k.id]);
        const waiting = async () =>
          Number((await other.query(`select count(*) as n from pg_stat_activity where datname = current_database() and wait_event_type = 'Lock'`)).rows[0].n);
        const set = f.t.api('PUT', '/v1/budgets', { token: u.accessToken, body: { scope: 'api_key', subjectId: k.id, period: 'month', limitTokens: 1000 } });
        await eventually(async () => assert.equal(await waiting(), 1, 'the PUT waits on the uncommitted row'));
        // Meanwhile the key is deleted and its budgets cleared (the daily one goes).
        assert.equal((await f.t.api('DELETE', `/v1/api-keys/${k.id}`, { token: u.accessToken })).status, 204);
        await eventually(async () => assert.deepEqual(await budgetsOf(), []));
        await other.query('rollback');
        const res = await set;
        assert.equal(res.status, 404, res.text);
        assert.equal(res.body.code, 'api_key_not_found');
        assert.deepEqual(await budgetsOf(), [], 'no budget left for a key that is gone');
      } finally {
        await other.end();
      }
    });

    test('limits lists every budget, however many were never drawn on yet', async () => {
      const u = await createUser(f.t);
      const ids: string[] = [];
      for (let i = 0; i < 3; i++) {
        const key = await keyOf(f.t, u);
        for (const period of ['day', 'month']) {
          const res = await f.t.api('PUT', '/v1/budgets', { token: u.accessToken, body: { scope: 'api_key', subjectId: key.id, period, limitTokens: 1000 } });
          assert.equal(res.status, 200, res.text);
          ids.push(res.body.id);
        }
      }
      const limits = await f.t.api('GET', '/v1/usage/limits', { token: u.accessToken });
      assert.equal(limits.status, 200, limits.text);
      assert.deepEqual(limits.body.data.map((l: { id: string }) => l.id).sort(), ids.sort());
      assert.ok(limits.body.data.every((l: { usedTokens: number }) => l.usedTokens === 0));
    });

    test('a budget of 0 is refused, in USD as in tokens, on both routes, and nothing is stored', async () => {
      const admin = await createUser(f.t, { admin: true });
      const u = await createUser(f.t);
      const key = await keyOf(f.t, u);
      for (const limits of [{ limitUsd: 0 }, { limitUsd: '0' }, { limitUsd: '0.000000' }, { limitUsd: 0, limitTokens: 1000 }, { limitTokens: 0 }]) {
        const own = await f.t.api('PUT', '/v1/budgets', { token: u.accessToken, body: { scope: 'api_key', subjectId: key.id, period: 'day', ...limits } });
        assert.equal(own.status, 400, `${JSON.stringify(limits)}: ${own.text}`);
        const theirs = await f.t.api('PUT', '/v1/admin/budgets', { token: admin.accessToken, body: { userId: u.id, period: 'day', ...limits } });
        assert.equal(theirs.status, 400, `${JSON.stringify(limits)}: ${theirs.text}`);
        if ('limitUsd' in limits) assert.equal(theirs.body.code, 'invalid_amount');
      }
      assert.deepEqual((await f.t.api('GET', `/v1/admin/budgets?userId=${u.id}`, { token: admin.accessToken })).body.data, []);
      assert.equal((await f.t.api('PUT', '/v1/budgets', { token: u.accessToken, body: { scope: 'api_key', subjectId: key.id, period: 'day', limitUsd: '0.000001' } })).status, 200, 'the smallest amount above 0 is a budget');
    });

    test('an admin default applies to users without a budget of their own for that period', async () => {
      const admin = await createUser(f.t, { admin: true });
      const plain = await createUser(f.t);
      const vip = await createUser(f.t);
      const def = await setUserBudget(f, admin, { userId: null, period: 'total', limitTokens: 1500 });
      assert.equal(def.scope, 'default');
      await setUserBudget(f, admin, { userId: vip.id, period: 'total', limitTokens: 1_000_000 });
      try {
        const plainKey = await keyOf(f.t, plain);
        const vipKey = await keyOf(f.t, vip);
        f.openai.state.defaults = { reply: 'ok', usage: USAGE };
        assert.equal((await complete(f.t, plainKey.key)).status, 200);
        assert.equal((await complete(f.t, plainKey.key)).status, 402, 'the default caps the plain user: 1500 of 1500 used');
        for (let i = 0; i < 3; i++) assert.equal((await complete(f.t, vipKey.key)).status, 200, 'the VIP\'s own budget replaces the default');
        const limits = await f.t.api('GET', '/v1/usage/limits', { token: plain.accessToken });
        assert.deepEqual(limits.body.data.map((l: any) => [l.scope, l.usedTokens]), [['default', 1500]]);
      } finally {
        assert.equal((await f.t.api('DELETE', `/v1/admin/budgets/${def.id}`, { token: admin.accessToken })).status, 204);
      }
    });

    test('concurrent calls overshoot by no more than what the admitted ones spent beyond their estimates', async () => {
      const admin = await createUser(f.t, { admin: true });
      const u = await createUser(f.t);
      await setUserBudget(f, admin, { userId: u.id, period: 'day', limitUsd: '0.001' });
      const { key } = await keyOf(f.t, u);
      // max_tokens 500 makes each call reserve 300 micro-dollars (500 × 0.60) before it runs: three fit in 1000.
      f.openai.state.defaults = { reply: 'ok', usage: USAGE, delayMs: 50 };
      const results = await Promise.all(Array.from({ length: 10 }, () => complete(f.t, key, { max_tokens: 500 })));
      const admitted = results.filter((r) => r.status === 200).length;
      assert.equal(admitted, 3);
      assert.ok(results.every((r) => r.status === 200 || (r.status === 402 && r.body.error.code === 'budget_exceeded')));
      const [l] = (await f.t.api('GET', '/v1/usage/limits', { token: u.accessToken })).body.data;
      assert.equal(l.usedMicros, admitted * COST);
      assert.ok(l.usedMicros - 1000 <= admitted * (COST - 300), 'overshoot bounded by the in-flight calls\' excess over their estimate');
    });

    test('two instances share one budget', { skip: clusterSkip(backend) }, async () => {
      const b = await f.second();
      const admin = await createUser(f.t, { admin: true });
      const u = await createUser(f.t);
      await setUserBudget(f, admin, { userId: u.id, period: 'day', limitUsd: '0.001' });
      const { key } = await keyOf(f.t, u);
      f.openai.state.defaults = { reply: 'ok', usage: USAGE, delayMs: 50 };
      const results = await Promise.all(Array.from({ length: 10 }, (_, i) => complete(i % 2 ? b : f.t, key, { max_tokens: 500 })));
      assert.equal(results.filter((r) => r.status === 200).length, 3, 'three admitted across both instances');
      assert.equal((await complete(b, key)).status, 402);
    });

    test('budget administration: admins only, validated input', async () => {
      const admin = await createUser(f.t, { admin: true });
      const u = await createUser(f.t);
      assert.equal((await f.t.api('PUT', '/v1/admin/budgets', { token: u.accessToken, body: { userId: u.id, period: 'day', limitUsd: 1000 } })).status, 403);
      assert.equal((await f.t.api('GET', '/v1/admin/budgets', { token: u.accessToken })).status, 403);
      const bad: unknown[] = [
        { userId: u.id, period: 'day' },
        { userId: u.id, period: 'week', limitUsd: 1 },
        { userId: u.id, period: 'day', limitUsd: '1.0000001' },
        { userId: u.id, period: 'day', limitUsd: -1 },
        { userId: u.id, period: 'day', limitTokens: 1.5 },
        { userId: 'nope', period: 'day', limitUsd: 1 },
        { userId: u.id, period: 'day', limitUsd: 1, extra: true },
      ];
      for (const body of bad) {
        const res = await f.t.api('PUT', '/v1/admin/budgets', { token: admin.accessToken, body });
        assert.equal(res.status, 400, `${JSON.stringify(body)}: ${res.text}`);
      }
      assert.equal((await f.t.api('PUT', '/v1/admin/budgets', { token: admin.accessToken, raw: '{"userId":' })).status, 400);
      const unknown = await f.t.api('PUT', '/v1/admin/budgets', { token: admin.accessToken, body: { userId: '00000000-0000-7000-8000-000000000000', period: 'day', limitUsd: 1 } });
      assert.equal(unknown.status, 404);
      const set = await setUserBudget(f, admin, { userId: u.id, period: 'day', limitUsd: 1 });
      const replaced = await setUserBudget(f, admin, { userId: u.id, period: 'day', limitUsd: 2 });
      assert.equal(replaced.id, set.id, 'one budget per user and period, replaced in place');
      const listed = await f.t.api('GET', `/v1/admin/budgets?userId=${u.id}`, { token: admin.accessToken });
      assert.deepEqual(listed.body.data.map((b: any) => b.limitMicros), [2_000_000]);
    });
  });
}
