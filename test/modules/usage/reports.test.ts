import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { eq, sql } from 'drizzle-orm';
import pg from 'pg';
import { usageDaily, usageEvents, usageRecentModels } from '../../../src/modules/usage/schema.ts';
import { backends, freshPostgresDatabase, startApp, type TestApp } from '../../support/app.ts';
import { createUser, type TestUser } from '../../support/factories.ts';

const DAY = 86_400_000;
const dayOf = (d: Date) => d.toISOString().slice(0, 10);

for (const backend of backends()) {
  describe(`usage reports and rollups [${backend}]`, () => {
    let t: TestApp;
    let admin: TestUser;
    let u: TestUser;
    let other: TestUser;
    const now = new Date();
    const days = [3, 2, 1, 0].map((ago) => dayOf(new Date(now.getTime() - ago * DAY)));

    before(async () => {
      t = await startApp({ backend });
      admin = await createUser(t, { admin: true });
      u = await createUser(t);
      other = await createUser(t);
      // Three calls a day for four days, one of them on an unpriced model, one failed; and some of another user's.
      const { recorder } = t.services.usage;
      for (const [i, day] of days.entries()) {
        const at = (h: number) => new Date(`${day}T${String(h).padStart(2, '0')}:00:00Z`);
        const base = { userId: u.id, source: 'gateway' as const, latencyMs: 10, ttftMs: 5 };
        recorder.record({ ...base, occurredAt: at(1), provider: 'openai', model: 'gpt-4o-mini', inputTokens: 100 + i, outputTokens: 10, costMicros: 21, status: 'ok' });
        recorder.record({ ...base, occurredAt: at(2), provider: 'local', model: 'qwen3', inputTokens: 50, outputTokens: 5, costMicros: null, status: 'ok' });
        recorder.record({ ...base, occurredAt: at(0), provider: 'openai', model: 'gpt-4o-mini', inputTokens: 0, outputTokens: 0, costMicros: 0, status: 'failed' });
        recorder.record({ ...base, userId: other.id, occurredAt: at(1), provider: 'openai', model: 'gpt-4o', inputTokens: 9, outputTokens: 9, costMicros: 999, status: 'ok' });
      }
      await recorder.flush();
    });
    after(() => t.close());

    const report = async (query: string, token = u.accessToken) => {
      const res = await t.api('GET', `/v1/usage?from=${days[0]}&to=${days[3]}&${query}`, { token });
      assert.equal(res.status, 200, res.text);
      return res.body;
    };

    const adminReport = async (query: string) => {
      const res = await t.api('GET', `/v1/admin/usage?from=${days[0]}&to=${days[3]}&${query}`, { token: admin.accessToken });
      assert.equal(res.status, 200, res.text);
      return res.body;
    };

    test('reports are the same from the events and from the rollups; a rollup run twice changes nothing', async () => {
      const queries = ['groupBy=day', 'groupBy=model', 'groupBy=day,model', `model=openai:gpt-4o-mini&groupBy=day`];
      const fromEvents = await Promise.all(queries.map((q) => report(q)));
      assert.deepEqual(fromEvents[0].totals, { requests: 12, failed: 4, inputTokens: 4 * 150 + 6, outputTokens: 60, cachedTokens: 0, costMicros: 84, cost: '0.000084', unpricedRequests: 4 });
      assert.deepEqual(fromEvents[1].data.map((r: any) => [r.provider, r.model, r.requests, r.costMicros, r.unpricedRequests]), [
        ['local', 'qwen3', 4, 0, 4],
        ['openai', 'gpt-4o-mini', 8, 84, 0],
      ]);

      const rolled = await t.services.usage.reports.rollup(now);
      assert.deepEqual(rolled, days.slice(0, 3), 'the complete days, not today');
      assert.equal(await t.services.usage.reports.rolledThrough(), days[2]);
      const rows = await t.deps.db.select().from(usageDaily).where(eq(usageDaily.userId, u.id));
      assert.equal(rows.length, 6, 'per day and model');
      assert.deepEqual(await Promise.all(queries.map((q) => report(q))), fromEvents, 'rollups + today\'s events = the events');

      // The next run rolls the last two rolled days again, and no others; recomputed, not added twice.
      assert.deepEqual(await t.services.usage.reports.rollup(now), days.slice(1, 3), 'only the last two days again');
      assert.deepEqual(await report('groupBy=day'), fromEvents[0]);
      // The last rolled day lost: rolled through the day before, so from two days before that.
      await t.deps.db.delete(usageDaily).where(eq(usageDaily.day, days[2]!));
      assert.deepEqual(await t.services.usage.reports.rollup(now), days.slice(0, 3));
      assert.deepEqual(await report('groupBy=day'), fromEvents[0]);

      // An event of an already rolled day that reaches the table late is counted once the next rollup has run.
      const { recorder } = t.services.usage;
      recorder.record({ userId: u.id, source: 'gateway', latencyMs: 10, ttftMs: 5, occurredAt: new Date(`${days[2]}T23:59:59Z`), provider: 'openai', model: 'gpt-4o-mini', inputTokens: 1, outputTokens: 1, costMicros: 5, status: 'ok' });
      await recorder.flush();
      assert.equal((await report('groupBy=day')).totals.requests, 12, 'not in the rollup yet');
      await t.services.usage.reports.rollup(now);
      const late = await report('groupBy=day');
      assert.equal(late.totals.requests, 13);
      assert.equal(late.totals.costMicros, 84 + 5);
      // Gone again, for the tests that follow.
      await t.deps.db.delete(usageEvents).where(eq(usageEvents.costMicros, 5));
      await t.services.usage.reports.rollup(now);
      assert.deepEqual(await report('groupBy=day'), fromEvents[0]);
    });

    test('admins see every user, grouped by user; others are refused', async () => {
      const res = await t.api('GET', `/v1/admin/usage?from=${days[0]}&to=${days[3]}&groupBy=user`, { token: admin.accessToken });
      assert.equal(res.status, 200, res.text);
      const byUser = Object.fromEntries(res.body.data.map((r: any) => [r.userId, r.requests]));
      assert.equal(byUser[u.id], 12);
      assert.equal(byUser[other.id], 4);
      assert.equal((await t.api('GET', '/v1/admin/usage', { token: u.accessToken })).status, 403);
      assert.equal((await t.api('GET', '/v1/admin/usage/export', { token: u.accessToken })).status, 403);
      const mine = await report('groupBy=user', u.accessToken).catch((e: Error) => e);
      assert.ok(mine instanceof Error, 'users cannot group by user');
    });

    test('admin totals across users (from the per-model rollup) agree with the per-user rollup and the events', async () => {
      await t.services.usage.reports.rollup(now);
      const byModel = await adminReport('groupBy=day,model');
      const byUser = await adminReport('groupBy=day,model,user');
      const summed = new Map<string, number>();
      for (const r of byUser.data) summed.set(`${r.day} ${r.model}`, (summed.get(`${r.day} ${r.model}`) ?? 0) + r.requests);
      assert.deepEqual(new Map(byModel.data.map((r: any) => [`${r.day} ${r.model}`, r.requests])), summed);
      assert.equal(byModel.totals.requests, 16, 'u\'s twelve calls and other\'s four');
      assert.equal(byModel.totals.costMicros, 84 + 4 * 999);
      assert.deepEqual((await adminReport('groupBy=model&model=openai:gpt-4o')).data.map((r: any) => [r.model, r.requests]), [['gpt-4o', 4]]);
    });

    test('across users, the days not rolled up yet come from their per-model totals up to a few minutes ago, then the events since', async () => {
      // Today's events as of a run at 23:00 today (UTC): totals up to 22:55, what came later from the events.
      const runAt = new Date(`${days[3]}T23:00:00Z`);
      await t.services.usage.reports.rollup(runAt);
      const recent = await t.deps.db.select().from(usageRecentModels);
      assert.deepEqual(
        recent.map((r) => [r.day, r.model, r.requests, r.failed, r.costMicros, r.unpricedRequests, r.rolledTo.toISOString()]).sort(),
        [
          [days[3], 'gpt-4o', 1, 0, 999, 0, `${days[3]}T22:55:00.000Z`],
          [days[3], 'gpt-4o-mini', 2, 1, 21, 0, `${days[3]}T22:55:00.000Z`],
          [days[3], 'qwen3', 1, 0, 0, 1, `${days[3]}T22:55:00.000Z`],
        ],
        'today only: the days before are in the daily rollups',
      );
      const before = await adminReport('groupBy=day,model');
      assert.equal(before.totals.requests, 16);
      // The totals are what the report reads for today: a row changed there shows (and is put back by the next run).
      await t.deps.db.update(usageRecentModels).set({ requests: 100 }).where(eq(usageRecentModels.model, 'gpt-4o'));
      assert.equal((await adminReport('groupBy=day,model')).totals.requests, 16 - 1 + 100);
      await t.services.usage.reports.rollup(runAt);
      assert.deepEqual(await adminReport('groupBy=day,model'), before);

      // An event after the totals' end is read from the events at once; one before it, arriving late, from the next run.
      const { recorder } = t.services.usage;
      const base = { userId: other.id, source: 'gateway' as const, latencyMs: 10, ttftMs: 5, provider: 'openai', model: 'gpt-4o', inputTokens: 1, outputTokens: 1, status: 'ok' as const };
      recorder.record({ ...base, occurredAt: new Date(`${days[3]}T22:57:00Z`), costMicros: 7 });
      recorder.record({ ...base, occurredAt: new Date(`${days[3]}T22:50:00Z`), costMicros: 8 });
      await recorder.flush();
      const now_ = await adminReport('groupBy=day,model');
      assert.equal(now_.totals.requests, 17);
      assert.equal(now_.totals.costMicros, before.totals.costMicros + 7);
      await t.services.usage.reports.rollup(runAt);
      const next = await adminReport('groupBy=day,model');
      assert.equal(next.totals.requests, 18);
      assert.equal(next.totals.costMicros, before.totals.costMicros + 7 + 8);
      // The per-user view agrees.
      const byUser = await adminReport('groupBy=day,model,user');
      assert.equal(byUser.totals.requests, 18);
      await t.deps.db.delete(usageEvents).where(eq(usageEvents.userId, other.id));
      await t.services.usage.reports.rollup(now);
    });

    test('the CSV export streams one row per day, user, key, project and model', async () => {
      const res = await fetch(`${t.url}/v1/admin/usage/export?from=${days[0]}&to=${days[3]}&userId=${u.id}`, { headers: { authorization: `Bearer ${admin.accessToken}` } });
      assert.equal(res.status, 200);
      assert.match(res.headers.get('content-type')!, /^text\/csv/);
      assert.match(res.headers.get('content-disposition')!, /attachment; filename="parley-usage-/);
      const lines = (await res.text()).trim().split('\n');
      assert.equal(lines[0], 'day,userId,apiKeyId,projectId,provider,model,requests,failed,inputTokens,outputTokens,cachedTokens,costMicros,cost,unpricedRequests');
      assert.equal(lines.length, 1 + 8, 'two models a day for four days');
      assert.equal(lines[1], `${days[0]},${u.id},,,local,qwen3,1,0,50,5,0,0,0.000000,1`);
      assert.equal(lines[2], `${days[0]},${u.id},,,openai,gpt-4o-mini,2,1,100,10,0,21,0.000021,0`);
      const bad = await t.api('GET', `/v1/admin/usage/export?from=${days[3]}&to=${days[0]}`, { token: admin.accessToken });
      assert.equal(bad.status, 400);
      // The last day there is: the export ends there (the day after it is written +010000-01-01, which sorts before it).
      for (const from of ['9999-12-31', '9999-12-01']) {
        const last = await fetch(`${t.url}/v1/admin/usage/export?from=${from}&to=9999-12-31`, { headers: { authorization: `Bearer ${admin.accessToken}` } });
        assert.equal(last.status, 200, from);
        assert.equal((await last.text()).trim().split('\n').length, 1, 'the header alone');
      }
    });
  });
}

if (backends().includes('postgres')) {
  describe('usage reports when the database session is not in UTC [postgres]', () => {
    test('UTC days all the same: reports, rollups and the export put each event on its UTC day', async () => {
      // A server whose TimeZone is Tokyo (initdb takes the host's zone): a date cast straight to timestamptz would be Tokyo midnight.
      const db = await freshPostgresDatabase();
      const admin = new pg.Client({ connectionString: db.url });
      await admin.connect();
      await admin.query(`alter database ${new URL(db.url).pathname.slice(1)} set timezone to 'Asia/Tokyo'`);
      await admin.end();
      const t = await startApp({ backend: 'postgres', env: { DATABASE_URL: db.url } });
      try {
        const { rows } = (await t.deps.db.execute(sql`select current_setting('TimeZone') as zone`)) as unknown as { rows: Array<{ zone: string }> };
        const zone = rows[0]!.zone;
        assert.equal(zone, 'Asia/Tokyo');
        const u = await createUser(t);
        const admin = await createUser(t, { admin: true });
        const days = ['2026-03-01', '2026-03-02', '2026-03-03'];
        const { recorder } = t.services.usage;
        // Early and late in each UTC day: in Tokyo, 00:30Z is the same date, 23:30Z the next one.
        for (const day of days) {
          for (const time of ['00:30', '23:30']) {
            recorder.record({ userId: u.id, source: 'gateway', latencyMs: 1, ttftMs: 1, occurredAt: new Date(`${day}T${time}:00Z`), provider: 'openai', model: 'gpt-4o-mini', inputTokens: 1, outputTokens: 1, costMicros: 1, status: 'ok' });
          }
        }
        await recorder.flush();
        const byDay = async () => {
          const res = await t.api('GET', `/v1/usage?from=2026-03-02&to=2026-03-03&groupBy=day`, { token: u.accessToken });
          assert.equal(res.status, 200, res.text);
          return res.body.data.map((r: any) => [r.day, r.requests]);
        };
        assert.deepEqual(await byDay(), [['2026-03-02', 2], ['2026-03-03', 2]], 'from the events');
        await t.services.usage.reports.rollup(new Date('2026-03-05T12:00:00Z'));
        const rolled = await t.deps.db.select().from(usageDaily).where(eq(usageDaily.userId, u.id));
        assert.deepEqual(rolled.map((r) => [r.day, r.requests]).sort(), days.map((d) => [d, 2]));
        assert.deepEqual(await byDay(), [['2026-03-02', 2], ['2026-03-03', 2]], 'from the rollups');
        const csv = await fetch(`${t.url}/v1/admin/usage/export?from=2026-03-01&to=2026-03-03&userId=${u.id}`, { headers: { authorization: `Bearer ${admin.accessToken}` } });
        assert.deepEqual((await csv.text()).trim().split('\n').slice(1).map((l) => l.split(',').slice(0, 1).concat(l.split(',')[6]!)), days.map((d) => [d, '2']));
      } finally {
        await t.close();
        await db.drop();
      }
    });
  });
}
