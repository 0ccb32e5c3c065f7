import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { eq } from 'drizzle-orm';
import { usageEvents } from '../../../src/modules/usage/schema.ts';
import { backends, startApp, type TestApp } from '../../support/app.ts';
import { eventually } from '../../support/eventually.ts';
import { startFakeOpenAI, type FakeOpenAI } from '../../support/fake-openai.ts';
import { createUser, type TestUser } from '../../support/factories.ts';

for (const backend of backends()) {
  describe(`document AI actions [${backend}]`, () => {
    let t: TestApp;
    let openai: FakeOpenAI;
    let u: TestUser;
    let docId: string;

    before(async () => {
      openai = await startFakeOpenAI();
      t = await startApp({ backend, env: { ...openai.env, DEFAULT_MODEL: 'openai:gpt-4o-mini', AI_RETRIES: '0', SAFETY_RULES: JSON.stringify({ blockedTerms: ['forbidden-word'], maxInputChars: 20 }) } });
      u = await createUser(t);
      const doc = await t.api('POST', '/v1/documents', { token: u.accessToken, body: { title: 'Launch plan', body: 'We launch the beta in March.\n\nMarketing starts in February.' } });
      docId = doc.body.id;
    });
    after(async () => {
      await t.close();
      await openai.close();
    });

    const finished = async (jobId: string, token = u.accessToken) => {
      let job: any;
      await eventually(async () => {
        job = (await t.api('GET', `/v1/jobs/${jobId}`, { token })).body;
        assert.equal(job.state, 'completed', JSON.stringify(job));
      }, 10_000);
      return job;
    };

    test('summarize: a job through the model, its summary the result, metered as source document', async () => {
      openai.reset();
      openai.script({ reply: '  The beta launches in March, after February marketing.  ' });
      // No body: the model is the deployment's (the body is optional).
      const res = await t.api('POST', `/v1/documents/${docId}/summarize`, { token: u.accessToken });
      assert.equal(res.status, 202, res.text);
      const job = await finished(res.body.jobId);
      assert.deepEqual(job.result, { summary: 'The beta launches in March, after February marketing.' });
      const sent = openai.requests.find((r) => r.path === '/v1/chat/completions')!.body;
      assert.match(sent.messages[0].content, /^Summarize the document below/);
      assert.equal(sent.messages[1].content, '# Launch plan\n\nWe launch the beta in March.\n\nMarketing starts in February.');
      await t.services.usage.recorder.flush();
      const events = await t.deps.db.select().from(usageEvents).where(eq(usageEvents.userId, u.id));
      assert.deepEqual(events.map((e) => e.source), ['document']);
    });

    test('suggest tags: cleaned, lower-case, at most five, not applied', async () => {
      openai.script({ reply: '1. Launch, #Marketing\n"Beta", roadmap, q1 planning, extra, more' });
      const res = await t.api('POST', `/v1/documents/${docId}/suggest-tags`, { token: u.accessToken, body: { model: 'openai:gpt-4o-mini' } });
      const job = await finished(res.body.jobId);
      assert.deepEqual(job.result, { tags: ['launch', 'marketing', 'beta', 'roadmap', 'q1 planning'] });
      assert.deepEqual((await t.api('GET', `/v1/documents/${docId}`, { token: u.accessToken })).body.tags, []);
    });

    test('someone without access gets 404; an unknown model is 400; nothing is queued', async () => {
      const stranger = await createUser(t);
      openai.reset();
      assert.equal((await t.api('POST', `/v1/documents/${docId}/summarize`, { token: stranger.accessToken, body: {} })).status, 404);
      const bad = await t.api('POST', `/v1/documents/${docId}/summarize`, { token: u.accessToken, body: { model: 'nowhere:thing' } });
      assert.equal(bad.status, 400);
      assert.equal(bad.body.code, 'unknown_model');
      assert.equal((await t.api('POST', `/v1/documents/${docId}/summarize`, { token: u.accessToken, body: { extra: 1 } })).status, 400);
      assert.equal(openai.requests.length, 0);
    });

    test("a document the deployment's safety rules flag is refused (422), its owner's jobs untouched; the message length cap does not apply to documents", async () => {
      const writer = await createUser(t);
      const doc = await t.api('POST', '/v1/documents', { token: writer.accessToken, body: { title: 'Notes', body: 'Longer than twenty characters.\n\nThen the ＦＯＲＢＩＤＤＥＮ-WORD.' } });
      openai.reset();
      const res = await t.api('POST', `/v1/documents/${doc.body.id}/summarize`, { token: writer.accessToken });
      assert.equal(res.status, 422, res.text);
      assert.equal(res.body.code, 'content_flagged');
      assert.deepEqual([res.body.categories, res.body.source], [['blocked_term'], 'deployment']);
      assert.match(res.body.detail, /This document was flagged/);
      assert.equal(openai.requests.length, 0);
      const queued = (await t.deps.queue.list({ queue: 'documents.ai', limit: 100 })).jobs.filter((j) => j.userId === writer.id);
      assert.deepEqual(queued, [], 'nothing queued');

      const clean = await t.api('POST', '/v1/documents', { token: writer.accessToken, body: { title: 'Notes', body: 'Longer than twenty characters, and harmless.' } });
      openai.script({ reply: 'Harmless notes.' });
      const ok = await t.api('POST', `/v1/documents/${clean.body.id}/summarize`, { token: writer.accessToken });
      assert.equal(ok.status, 202, ok.text);
      assert.deepEqual((await finished(ok.body.jobId, writer.accessToken)).result, { summary: 'Harmless notes.' });
    });
  });
}
