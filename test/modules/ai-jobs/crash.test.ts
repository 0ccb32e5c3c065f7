import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { and, eq } from 'drizzle-orm';
import { usageEvents } from '../../../src/modules/usage/schema.ts';
import { startApp, type TestApp } from '../../support/app.ts';
import { eventually } from '../../support/eventually.ts';
import { startFakeOpenAI, type FakeOpenAI } from '../../support/fake-openai.ts';
import { createUser } from '../../support/factories.ts';
import { startServer, type ServerProcess } from '../../support/process.ts';

// A worker process of its own needs a database and queue it can share: PostgreSQL, with BullMQ on Redis or the database queue.
for (const queue of ['bullmq', 'database'] as const) {
  describe(`AI jobs: a worker killed mid-generation [${queue}]`, { skip: !process.env.DATABASE_URL || !process.env.REDIS_URL }, () => {
    let t: TestApp;
    let survivor: TestApp | undefined;
    let worker: ServerProcess | undefined;
    let openai: FakeOpenAI;
    let env: Record<string, string>;

    before(async () => {
      openai = await startFakeOpenAI();
      // A lease long enough that a worker on a busy machine renews it in time (one that lapses starts a second attempt
      // beside the first, which is not the crash this test makes), short enough that the killed one's lapses soon.
      env = { ...openai.env, AI_RETRIES: '0', DEFAULT_MODEL: 'openai:gpt-4o-mini', JOB_LOCK_MS: '3000' };
      // Without REDIS_URL, the cluster's jobs go through the database queue (startApp reads it from the environment).
      const redisUrl = process.env.REDIS_URL;
      if (queue === 'database') delete process.env.REDIS_URL;
      try {
        t = await startApp({ backend: 'postgres', worker: false, env });
      } finally {
        process.env.REDIS_URL = redisUrl;
      }
      assert.equal(t.deps.queue.kind, queue);
    });
    after(async () => {
      worker?.child.kill('SIGKILL');
      await survivor?.close();
      await t.close();
      await openai.close();
    });

    test('the job is retried by another worker and completes; only the finished call is charged', async () => {
      const config = t.deps.config;
      worker = await startServer(
        { ...env, DATABASE_URL: config.databaseUrl!, ...(config.redisUrl ? { REDIS_URL: config.redisUrl } : {}), REDIS_PREFIX: config.redisPrefix, PARLEY_MASTER_KEY: config.masterKey!.toString('base64'), PUBLIC_URL: config.publicUrl },
        'worker',
      );
      const u = await createUser(t);
      // The first call streams a word and then holds its stream open; the retry gets a whole answer.
      openai.script({ chunks: ['Half ', 'an ', 'answer'], holdAfter: 1 });
      openai.state.defaults = { reply: 'The whole answer.', usage: { input: 9, output: 4 } };
      const res = await t.api('POST', '/v1/ai/jobs', { token: u.accessToken, body: { prompt: 'Tell me', notify: false } });
      assert.equal(res.status, 202, res.text);

      // The worker process is mid-stream (its progress reported): killed without a chance to record anything.
      await eventually(async () => {
        const job = (await t.api('GET', `/v1/jobs/${res.body.id}`, { token: u.accessToken })).body;
        assert.equal(job.state, 'active');
        assert.ok(job.progress?.outputTokens > 0, JSON.stringify(job.progress));
      }, 30_000);
      const sent = () => JSON.stringify(openai.requests.map((r) => `${r.path} aborted=${r.aborted}`));
      assert.equal(openai.requests.length, 1, sent());
      worker.child.kill('SIGKILL');
      await worker.exited;

      survivor = await startApp({ sharedWith: t, env });
      const job = await eventually(async () => {
        const body = (await t.api('GET', `/v1/jobs/${res.body.id}`, { token: u.accessToken })).body;
        assert.equal(body.state, 'completed', JSON.stringify(body));
        return body;
      }, 30_000);
      assert.equal(job.result.text, 'The whole answer.');
      assert.deepEqual(job.result.usage, { inputTokens: 9, outputTokens: 4, cachedTokens: 0 });
      // The database queue counts the killed attempt; BullMQ counts the attempts started.
      assert.equal(job.attempts, 2);
      assert.equal(openai.requests.length, 2, `the killed call was made again: ${sent()}`);
      assert.equal(openai.requests[0]!.aborted, true, 'the killed worker\'s stream went away with it');

      await survivor.services.usage.recorder.flush();
      const rows = await t.deps.db.select().from(usageEvents).where(and(eq(usageEvents.userId, u.id), eq(usageEvents.source, 'job')));
      assert.equal(rows.length, 1, 'charged once: the call that never finished recorded nothing');
      assert.equal(rows[0]!.status, 'ok');
      assert.equal(rows[0]!.outputTokens, 4);
      assert.equal(rows[0]!.costMicros, job.result.costMicros);
    });
  });
}
