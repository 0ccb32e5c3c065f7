import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, test } from 'node:test';
import { and, eq, sql } from 'drizzle-orm';
import { usageEvents } from '../../../src/modules/usage/schema.ts';
import { jobs as jobRows } from '../../../src/platform/queue/schema.ts';
import { backends, startApp, type TestApp } from '../../support/app.ts';
import { eventually } from '../../support/eventually.ts';
import { startFakeOpenAI, type FakeOpenAI } from '../../support/fake-openai.ts';
import { createUser, type TestUser } from '../../support/factories.ts';
import { connectAs, subscribe, type Frame } from '../../support/ws.ts';

const upstreamCalls = (openai: FakeOpenAI) => openai.requests.filter((r) => r.path.endsWith('/chat/completions')).length;

for (const backend of backends()) {
  describe(`AI jobs: POST /v1/ai/jobs [${backend}]`, () => {
    let t: TestApp;
    let openai: FakeOpenAI;
    let user: TestUser;

    before(async () => {
      openai = await startFakeOpenAI();
      t = await startApp({ backend, env: { ...openai.env, AI_RETRIES: '0', DEFAULT_MODEL: 'openai:gpt-4o-mini', SAFETY_RULES: JSON.stringify({ blockedTerms: ['deployment-banned'] }) } });
      user = await createUser(t);
    });
    after(async () => {
      await t.close();
      await openai.close();
    });
    beforeEach(() => openai.reset());

    const submit = (u: TestUser, body: unknown, headers?: Record<string, string>) => t.api('POST', '/v1/ai/jobs', { token: u.accessToken, body, headers });
    const finished = (u: TestUser, id: string) =>
      eventually(async () => {
        const res = await t.api('GET', `/v1/jobs/${id}`, { token: u.accessToken });
        assert.equal(res.status, 200, res.text);
        assert.ok(res.body.state === 'completed' || res.body.state === 'dead', `still ${res.body.state}`);
        return res.body;
      }, 20_000);
    const usageOf = async (u: TestUser) => {
      await t.services.usage.recorder.flush();
      // Model calls only: an emailed notice is metered too (source notification).
      return t.deps.db.select().from(usageEvents).where(and(eq(usageEvents.userId, u.id), eq(usageEvents.source, 'job')));
    };

    test('202 at once with the job id; the job completes with the text, model, usage and cost; the call is metered once, as a job', async () => {
      const u = await createUser(t);
      openai.script({ reply: 'Background hello.', usage: { input: 12, output: 3 } });
      const res = await submit(u, { messages: [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: 'Hi' }], temperature: 0.2, maxTokens: 50 });
      assert.equal(res.status, 202, res.text);
      assert.equal(res.body.status, 'queued');
      assert.equal(res.body.statusUrl, `/v1/jobs/${res.body.id}`);
      const job = await finished(u, res.body.id);
      assert.equal(job.state, 'completed', job.error);
      assert.equal(job.queue, 'ai.generate');
      assert.deepEqual(job.result, {
        text: 'Background hello.',
        model: 'openai:gpt-4o-mini',
        provider: 'openai',
        finishReason: 'stop',
        usage: { inputTokens: 12, outputTokens: 3, cachedTokens: 0 },
        costMicros: job.result.costMicros,
        cost: job.result.cost,
      });
      assert.ok(job.result.costMicros > 0, 'gpt-4o-mini has a price');
      const sent = openai.requests.at(-1)!.body;
      assert.deepEqual(sent.messages, [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: 'Hi' }]);
      assert.equal(sent.temperature, 0.2);
      const rows = await usageOf(u);
      assert.equal(rows.length, 1, JSON.stringify(rows));
      assert.equal(rows[0]!.source, 'job');
      assert.equal(rows[0]!.status, 'ok');
      assert.equal(rows[0]!.outputTokens, 3);
      assert.equal(rows[0]!.costMicros, job.result.costMicros);
    });

    test('the job\'s topic hears its progress (tokens so far) and its completion', async () => {
      const u = await createUser(t);
      // One socket follows all of the user's jobs, subscribed before the job exists; another the job's own topic, once it has the id.
      const all = await connectAs(t, u.accessToken);
      const one = await connectAs(t, u.accessToken);
      try {
        assert.equal((await subscribe(all, 'jobs')).type, 'subscribed');
        // Slow enough (about a second) for the second socket to subscribe before the first token.
        openai.script({ chunks: ['One ', 'two ', 'three.'], delayMs: 300 });
        const res = await submit(u, { prompt: 'Count' });
        assert.equal(res.status, 202, res.text);
        assert.equal((await subscribe(one, `job:${res.body.id}`)).type, 'subscribed');
        const mine = (topic: string, state: string) => (f: Frame) => f.topic === topic && f.event?.type === 'job.progress' && f.event.payload.jobId === res.body.id && f.event.payload.state === state;
        for (const [socket, topic] of [[all, 'jobs'], [one, `job:${res.body.id}`]] as const) {
          const progress = await socket.next((f) => mine(topic, 'active')(f) && f.event.payload.progress?.outputTokens > 0, 15_000);
          assert.equal(progress.event.payload.progress.model, 'openai:gpt-4o-mini');
          const done = await socket.next(mine(topic, 'completed'), 15_000);
          // The last report is the provider's count.
          assert.deepEqual(done.event.payload.progress, { outputTokens: 3, model: 'openai:gpt-4o-mini', done: true }, topic);
        }
        // A socket was open and notify was not asked for: no notification.
        const notes = await t.api('GET', '/v1/notifications', { token: u.accessToken });
        assert.deepEqual(notes.body.data.filter((n: any) => n.category === 'ai.job.completed'), []);
      } finally {
        await Promise.all([all.close(), one.close()]);
      }
    });

    test('progress on a long answer counts each part of it about once, not the whole answer again at every report', async () => {
      const u = await createUser(t);
      const { ai } = t.services;
      const { count } = ai.tokens;
      const { countTokens } = ai;
      let counted = 0;
      // Whichever way the tokens so far are counted.
      ai.tokens.count = (model, texts, signal) => {
        for (const text of texts) counted += text.length;
        return count.call(ai.tokens, model, texts, signal);
      };
      ai.countTokens = (model, text) => {
        counted += text.length;
        return countTokens(model, text);
      };
      try {
        // Each part comes after a report's interval: one report per part.
        const parts = Array.from({ length: 6 }, (_, i) => `Part ${i}. ${'All work and no play. '.repeat(2_000)}`);
        openai.script({ chunks: parts, delayMs: 300, usage: { input: 5, output: 60_000 } });
        const res = await submit(u, { prompt: 'Write at length' });
        const job = await finished(u, res.body.id);
        assert.equal(job.state, 'completed', job.error);
        assert.equal(job.result.text, parts.join(''));
        const length = parts.join('').length;
        assert.ok(counted > 0 && counted <= 1.5 * length, `${counted} characters counted for an answer of ${length}`);
      } finally {
        ai.tokens.count = count;
        ai.countTokens = countTokens;
      }
    });

    test('notify: true sends ai.job.completed once; false sends nothing', async () => {
      const u = await createUser(t);
      const yes = await submit(u, { prompt: 'Tell me', notify: true });
      const no = await submit(u, { prompt: 'Tell me quietly', notify: false });
      await finished(u, yes.body.id);
      await finished(u, no.body.id);
      const notes = (await t.api('GET', '/v1/notifications', { token: u.accessToken })).body.data.filter((n: any) => n.category === 'ai.job.completed');
      assert.equal(notes.length, 1);
      assert.equal(notes[0].data.jobId, yes.body.id);
      assert.equal(notes[0].link, `/jobs/${yes.body.id}`);
    });

    test('with a project: its model, system prompt and temperature; another user\'s project is a 404', async () => {
      const u = await createUser(t);
      const other = await createUser(t);
      const project = await t.api('POST', '/v1/projects', { token: u.accessToken, body: { name: 'Terse', systemPrompt: 'You are terse.', model: 'openai:gpt-4o', temperature: 0.7, maxTokens: 77 } });
      assert.equal(project.status, 201, project.text);
      const res = await submit(u, { projectId: project.body.id, prompt: 'Hi' });
      assert.equal(res.status, 202, res.text);
      const job = await finished(u, res.body.id);
      assert.equal(job.result.model, 'openai:gpt-4o');
      const sent = openai.requests.at(-1)!.body;
      assert.equal(sent.model, 'gpt-4o');
      assert.deepEqual(sent.messages[0], { role: 'system', content: 'You are terse.' });
      assert.equal(sent.temperature, 0.7);
      const theirs = await submit(other, { projectId: project.body.id, prompt: 'Hi' });
      assert.equal(theirs.status, 404, theirs.text);
      assert.equal(theirs.body.code, 'project_not_found');
    });

    test('safety: what the caller writes is checked by the deployment\'s rules and the project\'s before it is queued (422 content_flagged, nothing queued, no call)', async () => {
      const u = await createUser(t);
      const project = await t.api('POST', '/v1/projects', { token: u.accessToken, body: { name: 'Guarded' } });
      assert.equal(project.status, 201, project.text);
      assert.equal((await t.api('PUT', `/v1/projects/${project.body.id}/safety`, { token: u.accessToken, body: { blockedTerms: ['banana'] } })).status, 200);
      const before = upstreamCalls(openai);
      const deployment = await submit(u, { prompt: 'a DEPLOYMENT-BANNED word' });
      assert.equal(deployment.status, 422, deployment.text);
      assert.deepEqual([deployment.body.code, deployment.body.source, deployment.body.categories], ['content_flagged', 'deployment', ['blocked_term']]);
      const own = await submit(u, { projectId: project.body.id, messages: [{ role: 'system', content: 'Be kind.' }, { role: 'user', content: 'I like banana' }] });
      assert.equal(own.status, 422, own.text);
      assert.deepEqual([own.body.source, own.body.rule], ['project', 'blockedTerms[0]']);
      const queued = await t.deps.db.select().from(jobRows).where(eq(jobRows.userId, u.id));
      assert.equal(queued.length, 0, 'nothing queued');
      assert.equal(upstreamCalls(openai), before, 'no model called');
      // The project's rules are the project's: without it, the same words go through.
      const elsewhere = await submit(u, { prompt: 'I like banana' });
      assert.equal(elsewhere.status, 202, elsewhere.text);
      assert.equal((await finished(u, elsewhere.body.id)).state, 'completed');
    });

    test('without a model: the user\'s defaultModel preference before the server default', async () => {
      const u = await createUser(t);
      const pref = await t.api('PATCH', '/v1/users/me/preferences', { token: u.accessToken, body: { defaultModel: 'openai:gpt-4o' } });
      assert.equal(pref.status, 200, pref.text);
      const res = await submit(u, { prompt: 'Hi' });
      assert.equal((await finished(u, res.body.id)).result.model, 'openai:gpt-4o');
    });

    test('another user\'s job is a 404 (status and topic), as a missing one', async () => {
      const other = await createUser(t);
      const res = await submit(user, { prompt: 'Mine' });
      await finished(user, res.body.id);
      const seen = await t.api('GET', `/v1/jobs/${res.body.id}`, { token: other.accessToken });
      assert.equal(seen.status, 404);
      assert.equal(seen.body.code, 'job_not_found');
      assert.equal(seen.text.includes('Hello from'), false);
      const socket = await connectAs(t, other.accessToken);
      assert.equal((await subscribe(socket, `job:${res.body.id}`)).code, 'not_found');
      await socket.close();
    });

    test('bad input: 400 problems before anything is queued', async () => {
      const before = upstreamCalls(openai);
      const cases: Array<[string, unknown, string?]> = [
        ['no text', {}],
        ['both', { prompt: 'a', messages: [{ role: 'user', content: 'b' }] }],
        ['prompt not a string', { prompt: 5 }],
        ['empty prompt', { prompt: '' }],
        ['messages not an array', { messages: 'Hi' }],
        ['no messages', { messages: [] }],
        ['bad role', { messages: [{ role: 'tool', content: 'x' }] }],
        ['content not a string', { messages: [{ role: 'user', content: { text: 'x' } }] }],
        ['temperature out of range', { prompt: 'a', temperature: 9 }],
        ['maxTokens not an integer', { prompt: 'a', maxTokens: 1.5 }],
        ['notify not a boolean', { prompt: 'a', notify: 'yes' }],
        ['projectId not a uuid', { prompt: 'a', projectId: 'nope' }],
        ['model not provider:model', { prompt: 'a', model: 'gpt' }],
        ['unknown model', { prompt: 'a', model: 'nowhere:model-x' }, 'unknown_model'],
        ['unconfigured provider', { prompt: 'a', model: 'anthropic:claude-sonnet-4-5' }, 'unknown_model'],
        ['body an array', [{ prompt: 'a' }]],
        ['body null', null],
      ];
      for (const [label, body, code] of cases) {
        const res = await t.api('POST', '/v1/ai/jobs', { token: user.accessToken, raw: JSON.stringify(body) });
        assert.equal(res.status, 400, `${label}: ${res.text}`);
        assert.match(res.headers.get('content-type') ?? '', /application\/problem\+json/, label);
        if (code) assert.equal(res.body.code, code, label);
      }
      const malformed = await t.api('POST', '/v1/ai/jobs', { token: user.accessToken, raw: '{"prompt": "a",' });
      assert.equal(malformed.status, 400, malformed.text);
      const huge = await t.api('POST', '/v1/ai/jobs', { token: user.accessToken, raw: JSON.stringify({ prompt: 'x'.repeat(t.deps.config.bodyLimit + 10) }) });
      assert.equal(huge.status, 413, huge.text);
      const anonymous = await t.api('POST', '/v1/ai/jobs', { body: { prompt: 'a' } });
      assert.equal(anonymous.status, 401);
      assert.equal(upstreamCalls(openai), before, 'nothing reached the provider');
    });

    test('an API key needs the chat scope', async () => {
      const u = await createUser(t);
      const key = async (scopes: string[]) => (await t.api('POST', '/v1/api-keys', { token: u.accessToken, body: { name: 'k', scopes } })).body.key as string;
      const reader = await key(['jobs:read']);
      const denied = await t.api('POST', '/v1/ai/jobs', { token: reader, body: { prompt: 'a' } });
      assert.equal(denied.status, 403, denied.text);
      const writer = await key(['chat', 'jobs:read']);
      const ok = await t.api('POST', '/v1/ai/jobs', { token: writer, body: { prompt: 'a' } });
      assert.equal(ok.status, 202, ok.text);
      const job = await finished(u, ok.body.id);
      assert.equal(job.state, 'completed');
      const rows = await usageOf(u);
      assert.equal(rows[0]!.apiKeyId !== null, true, 'metered to the key');
    });

    test('over budget: 402 before queueing, and the provider is not called', async () => {
      const admin = await createUser(t, { admin: true });
      const u = await createUser(t);
      const budget = await t.api('PUT', '/v1/admin/budgets', { token: admin.accessToken, body: { userId: u.id, period: 'day', limitUsd: '0.000001' } });
      assert.equal(budget.status, 200, budget.text);
      const before = upstreamCalls(openai);
      const res = await submit(u, { prompt: 'Expensive', maxTokens: 1000 });
      assert.equal(res.status, 402, res.text);
      assert.equal(res.body.code, 'budget_exceeded');
      assert.equal(upstreamCalls(openai), before);
    });

    test('Idempotency-Key: a retry answers with the same job; another body with the key is a 422', async () => {
      const u = await createUser(t);
      const headers = { 'idempotency-key': `job-${Date.now()}` };
      const first = await submit(u, { prompt: 'Once' }, headers);
      assert.equal(first.status, 202, first.text);
      await finished(u, first.body.id);
      const again = await submit(u, { prompt: 'Once' }, headers);
      assert.equal(again.status, 202, again.text);
      assert.equal(again.body.id, first.body.id);
      assert.equal(again.body.status, 'completed');
      const different = await submit(u, { prompt: 'Twice' }, headers);
      assert.equal(different.status, 422, different.text);
      assert.equal(upstreamCalls(openai), 1, 'generated once');
      assert.equal((await usageOf(u)).length, 1);
    });

    test('an upstream failure fails the job with the reason, after its attempts', async () => {
      const u = await createUser(t);
      openai.state.defaults = { status: 500, errorMessage: 'Down for now.' };
      const res = await submit(u, { prompt: 'Fail' });
      assert.equal(res.status, 202, res.text);
      const job = await finished(u, res.body.id);
      assert.equal(job.state, 'dead');
      assert.equal(job.attempts, 3);
      assert.equal(upstreamCalls(openai), 3);
      assert.match(job.error, /openai:gpt-4o-mini provider_error/);
      assert.equal(job.errorCode, 'all_providers_failed', "Parley's own error: its owner reads its words and code");
      assert.equal(job.result, null);
      // The jobs module tells the owner of a dead job.
      await eventually(async () => {
        const notes = (await t.api('GET', '/v1/notifications', { token: u.accessToken })).body.data;
        assert.ok(notes.some((n: any) => n.category === 'job.failed' && n.data.jobId === res.body.id));
      });
    });

    test('a request the provider refuses (400) fails the job at its first attempt: another would be refused too', async () => {
      const u = await createUser(t);
      openai.state.defaults = { status: 400, errorMessage: 'This model refuses.' };
      const res = await submit(u, { prompt: 'Fail' });
      assert.equal(res.status, 202, res.text);
      const job = await finished(u, res.body.id);
      assert.equal(job.state, 'dead');
      assert.equal(job.attempts, 1);
      assert.equal(upstreamCalls(openai), 1);
      assert.match(job.error, /Provider answered 400: This model refuses\./);
      await eventually(async () => {
        const notes = (await t.api('GET', '/v1/notifications', { token: u.accessToken })).body.data;
        assert.ok(notes.some((n: any) => n.category === 'job.failed' && n.data.jobId === res.body.id));
      });
    });

    // Crashes in between the steps, made on the database queue by putting the job back as a lapsed lease does.
    test('a job run again after its result was stored returns it: no second call, no second charge', async (ctx) => {
      if (t.deps.queue.kind !== 'database') return ctx.skip('the database queue only');
      const u = await createUser(t);
      const res = await submit(u, { prompt: 'Stored' });
      const first = await finished(u, res.body.id);
      const calls = upstreamCalls(openai);
      await t.deps.db.update(jobRows).set({ state: 'waiting', runAt: sql`now()`, finishedAt: null, result: null }).where(eq(jobRows.id, res.body.id));
      const again = await finished(u, res.body.id);
      assert.equal(again.attempts, 2);
      assert.deepEqual(again.result, first.result);
      assert.equal(upstreamCalls(openai), calls);
      assert.equal((await usageOf(u)).length, 1);
    });

    test('a call run again after its usage was recorded (the result not yet stored) is charged once', async (ctx) => {
      if (t.deps.queue.kind !== 'database') return ctx.skip('the database queue only');
      const u = await createUser(t);
      const res = await submit(u, { prompt: 'Recorded' });
      await finished(u, res.body.id);
      assert.equal((await usageOf(u)).length, 1);
      const calls = upstreamCalls(openai);
      await t.deps.db.execute(sql`delete from ai_job_results where job_id = ${res.body.id}`);
      await t.deps.db.update(jobRows).set({ state: 'waiting', runAt: sql`now()`, finishedAt: null, result: null }).where(eq(jobRows.id, res.body.id));
      const again = await finished(u, res.body.id);
      assert.equal(again.state, 'completed');
      assert.equal(upstreamCalls(openai), calls + 1, 'the model was called again');
      const rows = await usageOf(u);
      assert.equal(rows.length, 1, 'and charged once');
      assert.equal(rows[0]!.status, 'ok');
    });
  });
}
