import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { backends } from '../../support/app.ts';
import { createUser } from '../../support/factories.ts';
import { chatAs, startChat, type ChatFixture } from '../chat/generation-fixture.ts';
import { after, before } from 'node:test';

for (const backend of backends()) {
  describe(`tokens per minute on model calls [${backend}]`, () => {
    let f: ChatFixture;
    before(async () => {
      f = await startChat(backend, { RATE_LIMIT_ENABLED: 'true', RATE_LIMIT_USER_TPM: '2000', RATE_LIMIT_KEY_TPM: '0' });
      f.openai.state.defaults = { reply: 'ok', usage: { input: 1000, output: 500 } };
    });
    after(() => f.close());

    test('what metered calls used counts against the user\'s tokens per minute, on the gateway and in chat', async () => {
      const u = await createUser(f.t);
      const key = (await f.t.api('POST', '/v1/api-keys', { token: u.accessToken, body: { name: 'k', scopes: ['chat'] } })).body.key;
      const complete = () => f.t.api('POST', '/v1/chat/completions', { token: key, body: { model: 'openai:gpt-4o-mini', messages: [{ role: 'user', content: 'Hi' }] } });
      assert.equal((await complete()).status, 200, '1,500 of 2,000');
      assert.equal((await complete()).status, 200, 'the window had room left when it started');
      const calls = f.openai.requests.length;
      const refused = await complete();
      assert.equal(refused.status, 429, refused.text);
      assert.equal(refused.body.error.code, 'token_rate_limited');
      assert.ok(Number(refused.headers.get('retry-after')) >= 1);
      assert.equal(f.openai.requests.length, calls, 'not sent upstream');

      const chat = chatAs(f.t, u);
      const c = await chat.conversation();
      const res = await chat.send(c, { content: 'Hello?' });
      assert.equal(res.status, 429, res.text);
      assert.equal(res.body.code, 'token_rate_limited');
      assert.equal((await chat.branch(c)).data.length, 0, 'nothing stored');

      const other = await createUser(f.t);
      const otherKey = (await f.t.api('POST', '/v1/api-keys', { token: other.accessToken, body: { name: 'k', scopes: ['chat'] } })).body.key;
      const theirs = await f.t.api('POST', '/v1/chat/completions', { token: otherKey, body: { model: 'openai:gpt-4o-mini', messages: [{ role: 'user', content: 'Hi' }] } });
      assert.equal(theirs.status, 200, 'per user');
    });
  });
}
