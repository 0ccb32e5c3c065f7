import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { asc, eq, sql } from 'drizzle-orm';
import { createUsageRecorder } from '../../../src/modules/usage/recorder.ts';
import { usageEvents } from '../../../src/modules/usage/schema.ts';
import { backends, startApp, type TestApp } from '../../support/app.ts';
import { eventually } from '../../support/eventually.ts';

for (const backend of backends()) {
  describe(`usage recorder [${backend}]`, () => {
    let t: TestApp;
    before(async () => {
      t = await startApp({ backend });
    });
    after(() => t.close());

    const rowsOf = (userId: string) => t.deps.db.select().from(usageEvents).where(eq(usageEvents.userId, userId)).orderBy(asc(usageEvents.occurredAt));

    test('awkward values survive the batched insert exactly', async () => {
      const recorder = createUsageRecorder(t.deps.db, { flushIntervalMs: 60_000, maxBatch: 100, maxPending: 10_000 });
      const userId = randomUUID();
      const awkward = 'model "with" quotes, commas, {braces}, \\backslashes\\ and ünïcödé';
      const attempts = [{ provider: 'p', model: 'm', error: 'said "no", twice\n{really}', code: 'provider_error', status: 500, at: new Date(0).toISOString() }];
      recorder.record({ userId, occurredAt: new Date('2026-01-01T00:00:00.123Z'), source: 'chat', provider: 'local', model: awkward, inputTokens: 2_000_000_000, outputTokens: 1, costMicros: 9_007_199_254_740_991, latencyMs: 5, ttftMs: null, status: 'failed', attempts, promptHash: null });
      recorder.record({ userId, occurredAt: new Date('2026-01-01T00:00:01Z'), source: 'gateway', provider: 'openai', model: 'gpt-4o-mini', latencyMs: 1, status: 'ok', costMicros: null });
      await recorder.close();
      const [a, b] = await rowsOf(userId);
      assert.equal(a!.model, awkward);
      assert.deepEqual(a!.attempts, attempts);
      assert.equal(a!.inputTokens, 2_000_000_000);
      assert.equal(a!.costMicros, Number.MAX_SAFE_INTEGER, 'bigint micro-dollars, exact');
      assert.equal(a!.occurredAt.toISOString(), '2026-01-01T00:00:00.123Z');
      assert.equal(a!.ttftMs, null);
      assert.equal(b!.costMicros, null, 'unknown price stays unknown');
      assert.deepEqual([b!.inputTokens, b!.outputTokens, b!.cachedTokens], [0, 0, 0]);
      assert.deepEqual(b!.attempts, []);
    });

    test('an event with an id already written is skipped, in a later batch or the same one (a retried call charged once)', async () => {
      const recorder = createUsageRecorder(t.deps.db, { flushIntervalMs: 60_000, maxBatch: 100, maxPending: 10_000 });
      const userId = randomUUID();
      const id = randomUUID();
      const event = { id, userId, source: 'job' as const, provider: 'openai', model: 'gpt-4o-mini', latencyMs: 1, status: 'ok' as const, costMicros: 7 };
      recorder.record(event);
      recorder.record({ userId, source: 'job', provider: 'openai', model: 'gpt-4o-mini', latencyMs: 1, status: 'failed', costMicros: 0 });
      await recorder.flush();
      recorder.record({ ...event, costMicros: 8 });
      recorder.record({ ...event, costMicros: 9 });
      await recorder.close();
      const rows = await rowsOf(userId);
      assert.equal(rows.length, 2, 'the failed one and the first success');
      assert.equal(rows.find((r) => r.id === id)!.costMicros, 7);
      assert.equal(recorder.pending().length, 0, 'nothing left retrying');
    });

    test('a full batch is written at once, before the interval', async () => {
      const recorder = createUsageRecorder(t.deps.db, { flushIntervalMs: 60_000, maxBatch: 50, maxPending: 10_000 });
      const userId = randomUUID();
      for (let i = 0; i < 120; i++) recorder.record({ userId, source: 'gateway', provider: 'openai', model: 'gpt-4o-mini', latencyMs: 1, status: 'ok', costMicros: 1 });
      await eventually(async () => assert.ok((await rowsOf(userId)).length >= 100, 'two full batches written'));
      assert.ok(recorder.pending().length <= 20);
      await recorder.close();
      assert.equal((await rowsOf(userId)).length, 120);
    });

    test('while the database refuses writes, events wait in memory; nothing is lost or written twice', async () => {
      const recorder = createUsageRecorder(t.deps.db, { flushIntervalMs: 60_000, maxBatch: 2, maxPending: 10_000 });
      const userId = randomUUID();
      await t.deps.db.execute(sql`alter table usage_events rename to usage_events_away`);
      try {
        for (let i = 0; i < 5; i++) recorder.record({ userId, source: 'gateway', provider: 'openai', model: 'm', latencyMs: 1, status: 'ok', costMicros: i });
        await recorder.flush();
        assert.equal(recorder.pending().length, 5, 'kept for the next flush');
      } finally {
        await t.deps.db.execute(sql`alter table usage_events_away rename to usage_events`);
      }
      await recorder.close();
      assert.deepEqual((await rowsOf(userId)).map((r) => r.costMicros).sort(), [0, 1, 2, 3, 4]);
    });
  });
}
