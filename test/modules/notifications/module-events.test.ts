import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { UpstreamFailed } from '../../../src/errors.ts';
import { memoryLedger } from '../../../src/modules/usage/ledger.ts';
import { createBudgetAlerts } from '../../../src/modules/usage/budget-alerts.ts';
import type { AnyBusEvent } from '../../../src/platform/bus/events.ts';
import { backends, type TestApp } from '../../support/app.ts';
import { observeEvents } from '../../support/bus.ts';
import { eventually } from '../../support/eventually.ts';
import { createUser, type TestUser } from '../../support/factories.ts';
import { PNG, uploadFile } from '../../support/files.ts';
import { clusterSkip, startChat, type ChatFixture } from '../chat/generation-fixture.ts';
import { startReceiver, verifies } from '../webhooks/receiver.ts';

// Each scripted call costs 435 micro-dollars (gpt-4o-mini: 800 × 0.15 + 200 × 0.075 + 500 × 0.60).
const USAGE = { input: 1000, output: 500, cached: 200 };

type Notification = { id: string; category: string; title: string; body: string; priority: string; data: Record<string, any>; channels: Record<string, { status: string; reason: string | null }> };

for (const backend of backends()) {
  describe(`notifications from module events [${backend}]`, () => {
    let f: ChatFixture;
    let t: TestApp;
    let receiver: Awaited<ReturnType<typeof startReceiver>>;
    let admin: TestUser;
    let failed: { events: Array<AnyBusEvent<'job.failed'>>; close(): Promise<void> };

    const inbox = async (u: TestUser, category: string): Promise<Notification[]> => {
      const res = await t.api('GET', '/v1/notifications?limit=100', { token: u.accessToken });
      assert.equal(res.status, 200, res.text);
      return (res.body.data as Notification[]).filter((n) => n.category === category);
    };

    before(async () => {
      receiver = await startReceiver({});
      f = await startChat(backend, { WEBHOOKS_ALLOW_PRIVATE: 'true', WEBHOOKS_RETRY_SCALE: '0.001' });
      t = f.t;
      admin = await createUser(t, { admin: true });
      // A real handler on a queue of the test's own, run by the app's worker like any module's: it always fails, with
      // Parley's own error (its owner is told its words; another error's they are not, see the jobs tests).
      t.services.jobs.define('test.doomed', async () => {
        throw UpstreamFailed(`the disk is on fire ${'!'.repeat(2000)}`);
      });
      // One that never ends, whatever its signal says: only its timeout ends its attempts.
      t.services.jobs.define('test.stuck', () => new Promise<never>(() => {}));
      failed = await observeEvents(t.deps.bus, ['job.failed']);
    });
    after(async () => {
      await failed.close();
      await f.close();
      await receiver.close();
    });

    test("a user's job that fails every attempt notifies its owner (in-app and email); a system job notifies nobody", async () => {
      const u = await createUser(t);
      const system = await t.services.jobs.enqueue('test.doomed', {}, { attempts: 1 });
      await eventually(async () => assert.equal((await t.services.jobs.get(system.id))?.state, 'dead'), 15_000);
      const job = await t.services.jobs.enqueue('test.doomed', {}, { userId: u.id, attempts: 2, backoffMs: 1 });
      const [n] = await eventually(async () => {
        const got = await inbox(u, 'job.failed');
        assert.equal(got.length, 1);
        return got;
      }, 15_000);
      assert.equal((await t.api('GET', `/v1/jobs/${job.id}`, { token: u.accessToken })).body.state, 'dead');
      assert.match(n!.title, /test\.doomed/);
      assert.match(n!.body, /all 2 attempts/);
      assert.match(n!.body, /the disk is on fire/);
      assert.ok(n!.body.length < 1000, 'an excerpt of the error, not all of it');
      assert.deepEqual([n!.data.jobId, n!.data.queue], [job.id, 'test.doomed']);
      assert.equal(n!.channels.inApp!.status, 'sent');
      assert.ok(['queued', 'sent'].includes(n!.channels.email!.status), 'email is on by default');
      assert.deepEqual(
        failed.events.filter((e) => e.payload.jobId === system.id),
        [],
        'the system job announced no failure',
      );
    });

    test('a job whose last attempt times out notifies its owner too, even though its handler never stops', async () => {
      const u = await createUser(t);
      const job = await t.services.jobs.enqueue('test.stuck', {}, { userId: u.id, attempts: 1, timeoutMs: 100 });
      const [n] = await eventually(async () => {
        const got = await inbox(u, 'job.failed');
        assert.equal(got.length, 1);
        return got;
      }, 15_000);
      assert.equal(n!.data.jobId, job.id);
      assert.match(n!.body, /timed out after 100 ms/i);
    });

    test('an uploaded image notifies its owner once its thumbnail is made, in-app only; a file with nothing left to do does not', async () => {
      const u = await createUser(t);
      await uploadFile(t, u, 'notes.txt', 'plain words');
      const image = await uploadFile(t, u, 'dot.png', PNG);
      const [n] = await eventually(async () => {
        const got = await inbox(u, 'file.ready');
        assert.equal(got.length, 1);
        return got;
      }, 15_000);
      assert.equal(n!.data.fileId, image.id);
      assert.equal(n!.data.thumbnail, 'ready');
      assert.match(n!.title, /dot\.png/);
      assert.equal(n!.channels.inApp!.status, 'sent');
      assert.deepEqual([n!.channels.email!.status, n!.channels.email!.reason], ['suppressed', 'preference'], 'email is off by default');
      const categories = (await t.api('GET', '/v1/notifications/categories', { token: u.accessToken })).body.data as Array<{ name: string; channels: { inApp: boolean; email: boolean } }>;
      const { inApp, ...others } = categories.find((c) => c.name === 'file.ready')!.channels as Record<string, boolean>;
      assert.equal(inApp, true);
      assert.ok(Object.values(others).every((on) => on === false), `in-app only: ${JSON.stringify(others)}`);
      for (const name of ['job.failed', 'budget.threshold', 'webhook.disabled']) {
        const channels = categories.find((c) => c.name === name)?.channels as Record<string, boolean>;
        assert.deepEqual([channels.inApp, channels.email, channels.push], [true, true, true], `${name}: in-app and email, push as email`);
      }
    });

    test('spend crossing 80 % and then 100 % of a budget tells its owner once per threshold (100 %: high), and budget.exceeded reaches their webhook, signed', async () => {
      const u = await createUser(t);
      const endpoint = await t.api('POST', '/v1/webhooks/endpoints', { token: u.accessToken, body: { url: `${receiver.url}/budget-${u.id}`, events: ['budget.exceeded'] } });
      assert.equal(endpoint.status, 201, endpoint.text);
      const budget = await t.api('PUT', '/v1/admin/budgets', { token: admin.accessToken, body: { userId: u.id, period: 'day', limitUsd: '0.001' } });
      assert.equal(budget.status, 200, budget.text);
      const key = (await t.api('POST', '/v1/api-keys', { token: u.accessToken, body: { name: 'k', scopes: ['chat'] } })).body.key as string;
      f.openai.state.defaults = { reply: 'ok', usage: USAGE };
      const complete = () => t.api('POST', '/v1/chat/completions', { token: key, body: { model: 'openai:gpt-4o-mini', messages: [{ role: 'user', content: 'Hi' }] } });

      // 435 of 1000: nothing to tell.
      assert.equal((await complete()).status, 200);
      // 870: past 80 %.
      assert.equal((await complete()).status, 200);
      const [eighty] = await eventually(async () => {
        const got = await inbox(u, 'budget.threshold');
        assert.equal(got.length, 1);
        return got;
      }, 10_000);
      assert.equal(eighty!.data.percent, 80);
      assert.equal(eighty!.priority, 'normal');
      assert.equal(eighty!.data.budgetId, budget.body.id);
      assert.deepEqual(eighty!.data.spent, { micros: 870, tokens: 3000 });
      assert.deepEqual(eighty!.data.limit, { micros: 1000, tokens: null });
      assert.equal(eighty!.data.period, 'day');
      // 1305: past 100 %, and past 80 % a second time.
      assert.equal((await complete()).status, 200);
      const all = await eventually(async () => {
        const got = await inbox(u, 'budget.threshold');
        assert.equal(got.length, 2);
        return got;
      }, 10_000);
      const hundred = all.find((n) => n.data.percent === 100)!;
      assert.equal(hundred.priority, 'high');
      assert.match(hundred.title, /used up/);
      assert.equal((await complete()).status, 402, 'over the budget now');

      const [hook] = await eventually(() => {
        const got = receiver.on(`/budget-${u.id}`);
        assert.equal(got.length, 1);
        return got;
      }, 10_000);
      assert.ok(verifies(endpoint.body.secret, hook!));
      const body = JSON.parse(hook!.body);
      assert.equal(body.type, 'budget.exceeded');
      assert.equal(body.data.budgetId, budget.body.id);
      assert.deepEqual(body.data.limit, { micros: 1000, tokens: null });

      assert.deepEqual((await inbox(u, 'budget.threshold')).map((n) => n.data.percent).sort(), [100, 80]);
    });

    test('two instances that see the same threshold reached announce it once: the database claim decides', async () => {
      const u = await createUser(t);
      const budget = await t.api('PUT', '/v1/admin/budgets', { token: admin.accessToken, body: { userId: u.id, period: 'month', limitTokens: 1000 } });
      assert.equal(budget.status, 200, budget.text);
      // Spend recorded without a call through metering: only the two watchers below look at it.
      t.services.usage.recorder.record({ userId: u.id, source: 'gateway', provider: 'openai', model: 'gpt-4o-mini', inputTokens: 900, outputTokens: 100, latencyMs: 1, status: 'ok' });
      await t.services.usage.recorder.flush();
      const seen = await observeEvents(t.deps.bus, ['budget.threshold']);
      try {
        const watchers = [0, 1].map(() => createBudgetAlerts({ db: t.deps.db, ledger: memoryLedger(), bus: t.deps.bus, shared: false, intervalMs: 10 }));
        const entries = await t.services.usage.budgets.entriesFor({ userId: u.id });
        for (const w of watchers) w.touch(u.id, entries);
        for (const w of watchers) w.touch(u.id, entries);
        await Promise.all(watchers.map((w) => w.close()));
        await eventually(async () => assert.equal((await inbox(u, 'budget.threshold')).length, 1), 10_000);
        const mine = seen.events.filter((e) => e.payload.userId === u.id);
        assert.deepEqual(
          mine.map((e) => e.payload.percent),
          [100],
          'one event, for the higher threshold only',
        );
      } finally {
        await seen.close();
      }
    });
  });

  describe(`budget thresholds across two instances [${backend}]`, { skip: clusterSkip(backend) }, () => {
    let f: ChatFixture;
    before(async () => {
      f = await startChat(backend);
    });
    after(() => f.close());

    test('calls on both instances: each threshold is told once, whichever instance saw it first', async () => {
      const [a, b] = [f.t, await f.second()];
      const admin = await createUser(a, { admin: true });
      const u = await createUser(a);
      const sentinel = await createUser(a);
      const seen = await observeEvents(a.deps.bus, ['budget.threshold']);
      try {
        assert.equal((await a.api('PUT', '/v1/admin/budgets', { token: admin.accessToken, body: { userId: u.id, period: 'month', limitUsd: '0.001' } })).status, 200);
        const key = (await a.api('POST', '/v1/api-keys', { token: u.accessToken, body: { name: 'k', scopes: ['chat'] } })).body.key as string;
        f.openai.state.defaults = { reply: 'ok', usage: USAGE };
        const complete = (on: TestApp) => on.api('POST', '/v1/chat/completions', { token: key, body: { model: 'openai:gpt-4o-mini', messages: [{ role: 'user', content: 'Hi' }] } });
        // 435 on one, 870 on the other (80 %: the second's own read may not see the first's spend yet), 1305 on the first.
        for (const on of [a, b, a]) assert.equal((await complete(on)).status, 200);
        const inbox = async () => ((await a.api('GET', '/v1/notifications?limit=100', { token: u.accessToken })).body.data as Notification[]).filter((n) => n.category === 'budget.threshold');
        await eventually(async () => assert.deepEqual((await inbox()).map((n) => n.data.percent).sort(), [100, 80]), 15_000);
        // Both instances check what they have pending, then stop checking; an event published after theirs arrives after them.
        await b.services.usage.alerts.close();
        await a.services.usage.alerts.close();
        await a.deps.bus.publish('budget.threshold', { userId: sentinel.id, budgetId: '01890000-0000-7000-8000-000000000000', scope: 'user', subjectId: null, percent: 80, period: 'month', periodKey: 'sentinel', resetsAt: null, spent: { micros: 0, tokens: 0 }, limit: { micros: 1, tokens: null } });
        await eventually(() => assert.ok(seen.events.some((e) => e.payload.userId === sentinel.id)), 10_000);
        assert.deepEqual(seen.events.filter((e) => e.payload.userId === u.id).map((e) => e.payload.percent).sort(), [100, 80]);
        assert.deepEqual((await inbox()).map((n) => n.data.percent).sort(), [100, 80]);
      } finally {
        await seen.close();
      }
    });
  });
}
