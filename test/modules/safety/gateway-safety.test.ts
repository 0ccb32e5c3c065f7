import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { backends, startApp, type TestApp } from '../../support/app.ts';
import { createUser, type TestUser } from '../../support/factories.ts';
import { startFakeModeration, type FakeModeration } from '../../support/fake-moderation.ts';
import { startFakeOpenAI, type FakeOpenAI } from '../../support/fake-openai.ts';

/**
 * The gateway's three APIs hold what a caller sends to the deployment's safety rules and moderation
 * provider, as the chat API does: a flagged request is refused in that API's own error format before
 * any model is called, audited and raised as an abuse flag.
 */
const RULES = { blockedTerms: ['deploy-banned'], patterns: [], maxInputChars: 500, moderationCategories: [] };

for (const backend of backends()) {
  describe(`gateway safety checks [${backend}]`, () => {
    let t: TestApp;
    let plain: TestApp;
    let openai: FakeOpenAI;
    let moderation: FakeModeration;
    let user: TestUser;
    let key: string;
    let keyId: string;

    before(async () => {
      openai = await startFakeOpenAI();
      moderation = await startFakeModeration();
      moderation.flag('stab you', { violence: 0.97 });
      const env = { ...openai.env, DEFAULT_MODEL: 'openai:gpt-4o-mini', AI_RETRIES: '0' };
      t = await startApp({ backend, worker: false, env: { ...env, ...moderation.env, SAFETY_RULES: JSON.stringify(RULES) } });
      // The same deployment without rules or a provider: nothing is checked, nothing is asked.
      plain = await startApp({ backend, worker: false, env });
      user = await createUser(t);
      const res = await t.api('POST', '/v1/api-keys', { token: user.accessToken, body: { name: 'sdk', scopes: ['chat'] } });
      key = res.body.key;
      keyId = res.body.id;
    });
    after(async () => {
      await plain.close();
      await t.close();
      await openai.close();
      await moderation.close();
    });

    const post = (app: TestApp, path: string, body: unknown, headers: Record<string, string> = {}, secret = key) =>
      fetch(`${app.url}${path}`, { method: 'POST', headers: { authorization: `Bearer ${secret}`, 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) }).then(async (r) => ({ status: r.status, body: (await r.json()) as any }));
    const chat = (app: TestApp, messages: unknown[], stream = false) => post(app, '/v1/chat/completions', { model: 'openai:gpt-4o-mini', messages, stream });
    const anthropic = (app: TestApp, body: Record<string, unknown>) => post(app, '/v1/messages', { model: 'openai:gpt-4o-mini', max_tokens: 50, ...body }, { 'anthropic-version': '2023-06-01' });
    const responses = (app: TestApp, body: Record<string, unknown>) => post(app, '/v1/responses', { model: 'openai:gpt-4o-mini', ...body });

    test('Chat Completions: a blocked term in any user or system message, or a provider flag, is a 422 in OpenAI\'s format; no model is called', async () => {
      openai.reset();
      const asked = moderation.requests.length;
      const term = await chat(t, [{ role: 'system', content: 'Never say deploy-banned.' }, { role: 'user', content: 'Hi' }]);
      assert.equal(term.status, 422, JSON.stringify(term.body));
      assert.equal(term.body.error.code, 'content_flagged');
      assert.equal(term.body.error.type, 'invalid_request_error');
      assert.match(term.body.error.message, /flagged \(blocked_term\)/);
      assert.equal(moderation.requests.length, asked, 'a rule that flags costs no provider call');

      // An earlier user turn is checked as well: history the client sends is the client's words.
      const earlier = await chat(t, [{ role: 'user', content: 'I will stab you' }, { role: 'assistant', content: 'Please do not.' }, { role: 'user', content: 'ok' }], true);
      assert.equal(earlier.status, 422, JSON.stringify(earlier.body));
      assert.equal(earlier.body.error.code, 'content_flagged');
      assert.match(earlier.body.error.message, /violence/);
      assert.equal(openai.requests.length, 0, 'the model was never asked');

      const [entry] = await t.services.audit.list({ limit: 5, userId: user.id, action: 'content.flagged' });
      assert.equal(entry?.metadata.direction, 'input');
      assert.equal(entry?.metadata.apiKeyId, keyId, 'the key that sent it is named');
    });

    test('a clean request goes through after one moderation call over what the caller wrote', async () => {
      openai.reset();
      openai.script({ reply: 'Hello.' });
      const asked = moderation.requests.length;
      const ok = await chat(t, [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: 'Say hello' }, { role: 'assistant', content: 'earlier answer' }]);
      assert.equal(ok.status, 200, JSON.stringify(ok.body));
      assert.equal(ok.body.choices[0].message.content, 'Hello.');
      assert.equal(moderation.requests.length, asked + 1);
      const input = moderation.requests.at(-1)!.body.input as string;
      assert.ok(input.includes('Be brief.') && input.includes('Say hello'));
      assert.ok(!input.includes('earlier answer'), 'the model\'s own earlier answers are not the caller\'s words');
    });

    test('a message longer than maxInputChars is a 400 message_too_long; a long conversation of short messages is not', async () => {
      const long = await chat(t, [{ role: 'user', content: 'x'.repeat(501) }]);
      assert.equal(long.status, 400, JSON.stringify(long.body));
      assert.equal(long.body.error.code, 'message_too_long');
      openai.script({ reply: 'Fine.' });
      const many = await chat(t, Array.from({ length: 4 }, () => ({ role: 'user', content: 'y'.repeat(400) })));
      assert.equal(many.status, 200, JSON.stringify(many.body));
    });

    test('Messages API: a flagged system prompt or message is a 422 in Anthropic\'s error format', async () => {
      openai.reset();
      const system = await anthropic(t, { system: 'You are deploy-banned.', messages: [{ role: 'user', content: 'Hi' }] });
      assert.equal(system.status, 422, JSON.stringify(system.body));
      assert.equal(system.body.type, 'error');
      assert.equal(system.body.error.type, 'invalid_request_error');
      assert.match(system.body.error.message, /flagged/);
      const flagged = await anthropic(t, { messages: [{ role: 'user', content: [{ type: 'text', text: 'I will stab you' }] }], stream: true });
      assert.equal(flagged.status, 422, JSON.stringify(flagged.body));
      assert.equal(openai.requests.length, 0);
    });

    test('Responses API: flagged input or instructions are a 422 in OpenAI\'s format, and nothing is stored', async () => {
      openai.reset();
      const flagged = await responses(t, { input: 'I will stab you' });
      assert.equal(flagged.status, 422, JSON.stringify(flagged.body));
      assert.equal(flagged.body.error.code, 'content_flagged');
      const instructions = await responses(t, { instructions: 'deploy-banned rules', input: [{ role: 'user', content: [{ type: 'input_text', text: 'Hi' }] }] });
      assert.equal(instructions.status, 422, JSON.stringify(instructions.body));
      assert.equal(openai.requests.length, 0);
      openai.script({ reply: 'Clean.' });
      const ok = await responses(t, { input: 'Say hello' });
      assert.equal(ok.status, 200, JSON.stringify(ok.body));
    });

    test('a deployment without rules or a provider checks nothing and asks no provider', async () => {
      openai.script({ reply: 'Unchecked.' });
      const asked = moderation.requests.length;
      const other = await createUser(plain);
      const made = await plain.api('POST', '/v1/api-keys', { token: other.accessToken, body: { name: 'sdk', scopes: ['chat'] } });
      const res = await post(plain, '/v1/chat/completions', { model: 'openai:gpt-4o-mini', messages: [{ role: 'user', content: 'I will stab you, deploy-banned' }] }, {}, made.body.key);
      assert.equal(res.status, 200, JSON.stringify(res.body));
      assert.equal(moderation.requests.length, asked);
    });
  });
}
