import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { backends, startApp, type TestApp } from '../../support/app.ts';
import { startFakeOpenAI, type FakeOpenAI } from '../../support/fake-openai.ts';
import { createUser, type TestUser } from '../../support/factories.ts';

const HOUR = 3600_000;

for (const backend of backends()) {
  describe(`abuse detection [${backend}]`, () => {
    let t: TestApp;
    let openai: FakeOpenAI;
    let admin: TestUser;

    before(async () => {
      openai = await startFakeOpenAI();
      t = await startApp({
        backend,
        env: {
          ...openai.env,
          DEFAULT_MODEL: 'openai:gpt-4o-mini',
          ABUSE_REPEATED_PROMPTS: '5',
          ABUSE_SPIKE_FACTOR: '10',
          ABUSE_SPIKE_MIN_TOKENS: '10000',
          ABUSE_KEY_BURST: '3',
          ABUSE_AUTO_THROTTLE_SECONDS: '600',
          RATE_LIMIT_ENABLED: 'true',
        },
      });
      admin = await createUser(t, { admin: true });
    });
    after(async () => {
      await t.close();
      await openai.close();
    });

    const check = async () => {
      const res = await t.api('POST', '/v1/admin/abuse-flags/check', { token: admin.accessToken });
      assert.equal(res.status, 200, res.text);
      return res.body.raised as Array<{ id: string; userId: string; kind: string; evidence: string }>;
    };
    const flagsOf = async (userId: string, active = false) =>
      (await t.api('GET', `/v1/admin/abuse-flags?userId=${userId}${active ? '&active=true' : ''}`, { token: admin.accessToken })).body.data;

    test('many identical prompts are flagged once, with the evidence, and the automatic throttle bans the user', async () => {
      const u = await createUser(t);
      const key = (await t.api('POST', '/v1/api-keys', { token: u.accessToken, body: { name: 'bot', scopes: ['chat'] } })).body.key;
      for (let i = 0; i < 5; i++) {
        const res = await t.api('POST', '/v1/chat/completions', { token: key, body: { model: 'openai:gpt-4o-mini', messages: [{ role: 'user', content: 'Buy now!!!' }] } });
        assert.equal(res.status, 200, res.text);
      }
      await t.services.usage.recorder.flush();
      const raised = (await check()).filter((f) => f.userId === u.id);
      assert.deepEqual(raised.map((f) => f.kind), ['repeated_prompts']);
      assert.match(raised[0]!.evidence, /the same prompt \(fingerprint [0-9a-f]{16}\) 5 times in the last hour/);
      assert.deepEqual((await check()).filter((f) => f.userId === u.id), [], 'not raised again while open');

      const banned = await t.api('GET', '/v1/users/me', { token: u.accessToken });
      assert.equal(banned.status, 403, 'throttled automatically');
      assert.equal(banned.body.code, 'banned');
      const bans = await t.api('GET', '/v1/admin/bans', { token: admin.accessToken });
      const ban = bans.body.data.find((b: any) => b.subject === u.id);
      assert.match(ban.reason, /Automatic throttle: repeated prompts/);
      assert.equal((await t.api('DELETE', `/v1/admin/bans/${ban.id}`, { token: admin.accessToken })).status, 200);
      assert.equal((await t.api('GET', '/v1/users/me', { token: u.accessToken })).status, 200, 'lifted by an admin');
    });

    test('a jump far above the account\'s own baseline is flagged; steady heavy use is not', async () => {
      const spiky = await createUser(t);
      const steady = await createUser(t);
      const { recorder } = t.services.usage;
      const event = (userId: string, hoursAgo: number, tokens: number) =>
        recorder.record({ userId, source: 'gateway', provider: 'openai', model: 'gpt-4o-mini', inputTokens: tokens, outputTokens: 0, costMicros: 0, latencyMs: 1, status: 'ok', occurredAt: new Date(Date.now() - hoursAgo * HOUR) });
      // The week before: spiky used 168 tokens in all (1 an hour); steady 20,000 an hour.
      event(spiky.id, 48, 168);
      for (let h = 2; h <= 168; h += 1) event(steady.id, h, 20_000);
      // The last hour: both 30,000.
      event(spiky.id, 0.1, 30_000);
      event(steady.id, 0.1, 30_000);
      await recorder.flush();
      const raised = await check();
      const spike = raised.find((f) => f.userId === spiky.id);
      assert.equal(spike?.kind, 'usage_spike');
      assert.match(spike!.evidence, /30000 tokens in the last hour against an hourly average of 1/);
      assert.equal(raised.find((f) => f.userId === steady.id), undefined);
      for (const b of (await t.api('GET', '/v1/admin/bans', { token: admin.accessToken })).body.data) {
        if (b.subject === spiky.id) await t.api('DELETE', `/v1/admin/bans/${b.id}`, { token: admin.accessToken });
      }
    });

    test('many API keys created at once are flagged; admins list, filter and clear flags', async () => {
      const u = await createUser(t);
      for (let i = 0; i < 3; i++) assert.equal((await t.api('POST', '/v1/api-keys', { token: u.accessToken, body: { name: `k${i}` } })).status, 201);
      const raised = (await check()).filter((f) => f.userId === u.id);
      assert.deepEqual(raised.map((f) => [f.kind, f.evidence]), [['key_burst', '3 API keys created in the last hour']]);
      assert.equal((await flagsOf(u.id, true)).length, 1);

      const cleared = await t.api('POST', `/v1/admin/abuse-flags/${raised[0]!.id}/clear`, { token: admin.accessToken });
      assert.equal(cleared.status, 200);
      assert.ok(cleared.body.clearedAt);
      assert.equal(cleared.body.clearedBy, admin.id);
      assert.equal((await flagsOf(u.id, true)).length, 0);
      assert.equal((await flagsOf(u.id)).length, 1, 'cleared flags stay on record');
      assert.equal((await t.api('POST', `/v1/admin/abuse-flags/${raised[0]!.id}/clear`, { token: admin.accessToken })).status, 200, 'idempotent');
      assert.equal((await t.api('POST', '/v1/admin/abuse-flags/00000000-0000-7000-8000-000000000000/clear', { token: admin.accessToken })).status, 404);
      assert.equal((await t.api('GET', '/v1/admin/abuse-flags', { token: u.accessToken })).status, 403);
      assert.equal((await t.api('POST', '/v1/admin/abuse-flags/check', { token: u.accessToken })).status, 403);
      assert.equal((await t.api('GET', '/v1/admin/abuse-flags?active=maybe', { token: admin.accessToken })).status, 400);
      for (const b of (await t.api('GET', '/v1/admin/bans', { token: admin.accessToken })).body.data) {
        if (b.subject === u.id) await t.api('DELETE', `/v1/admin/bans/${b.id}`, { token: admin.accessToken });
      }
    });
  });
}
