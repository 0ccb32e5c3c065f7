import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { startApp, type TestApp } from '../support/app.ts';
import { createUser, type TestUser } from '../support/factories.ts';

/**
 * Names and titles are listed as one line (the console, audit entries, emails): one with a line break or a
 * direction override (U+202E makes `Invoice\u202Efdp.exe` read as `Invoice exe.pdf`) writes or reorders text of
 * its own, and one of invisible characters only lists as a blank row. Each is a 400, wherever a name is given.
 */
describe('names and titles: one line that shows something', () => {
  let t: TestApp;
  let u: TestUser;
  let conversation: string;
  let project: string;
  before(async () => {
    t = await startApp();
    u = await createUser(t);
    const c = await t.api('POST', '/v1/conversations', { token: u.accessToken, body: { title: 'Plain' } });
    conversation = c.body.id;
    project = (await t.api('POST', '/v1/projects', { token: u.accessToken, body: { name: 'Plain' } })).body.id;
  });
  after(() => t.close());

  const BAD = { override: 'Invoice \u202Efdp.exe', lineBreak: 'Two\nlines', zeroWidth: '\u200B\u200B', hangulFiller: '\u3164' };

  const fields: Array<[what: string, send: (name: string) => ReturnType<TestApp['api']>]> = [
    ['display name', (name) => t.api('PATCH', '/v1/users/me', { token: u.accessToken, body: { name } })],
    ['API key name', (name) => t.api('POST', '/v1/api-keys', { token: u.accessToken, body: { name } })],
    ['collection name', (name) => t.api('POST', '/v1/knowledge/collections', { token: u.accessToken, body: { name } })],
    ['document title', (name) => t.api('POST', '/v1/documents', { token: u.accessToken, body: { title: name, body: 'Text.' } })],
    ['conversation title', (name) => t.api('PATCH', `/v1/conversations/${conversation}`, { token: u.accessToken, body: { title: name } })],
    ['project name', (name) => t.api('POST', '/v1/projects', { token: u.accessToken, body: { name } })],
    ['prompt name', (name) => t.api('POST', `/v1/projects/${project}/prompts`, { token: u.accessToken, body: { name, content: 'Be brief.' } })],
  ];

  test("a document's title taken from its body's first line is one line that shows something too", async () => {
    const doc = await t.api('POST', '/v1/documents', { token: u.accessToken, body: { body: '\u200B\n# Invoice \u202Efdp.exe\u202C\nPay it.' } });
    assert.equal(doc.status, 201, doc.text);
    assert.equal(doc.body.title, 'Invoice fdp.exe');
  });

  for (const [what, send] of fields) {
    test(`${what}: a direction override, a line break or only invisible characters is a 400; a plain name is taken`, async () => {
      for (const [kind, name] of Object.entries(BAD)) {
        const res = await send(name);
        assert.equal(res.status, 400, `${kind}: ${res.text}`);
        assert.equal(res.body.code, 'validation_failed', kind);
      }
      const ok = await send('  Révision 2 — 会议 ');
      assert.ok(ok.status === 200 || ok.status === 201, ok.text);
    });
  }
});
