import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { backends, startApp, type TestApp } from '../../support/app.ts';
import { createUser, type TestUser } from '../../support/factories.ts';
import { checkCapRace } from '../../support/per-user-cap.ts';

for (const backend of backends()) {
  describe(`documents per user [${backend}]`, () => {
    let t: TestApp;
    before(async () => {
      t = await startApp({ backend, env: { DOCUMENTS_MAX_PER_USER: '2' } });
    });
    after(() => t.close());

    const create = (u: TestUser, body: Record<string, unknown> = { title: 'Plan', body: 'The plan.\n' }) => t.api('POST', '/v1/documents', { token: u.accessToken, body });
    const stored = async (u: TestUser) => {
      const [active, archived] = await Promise.all([false, true].map((archived) => t.api('GET', `/v1/documents?sharedWithMe=false&archived=${archived}`, { token: u.accessToken })));
      return active!.body.data.length + archived!.body.data.length;
    };

    test('a user owns at most DOCUMENTS_MAX_PER_USER documents (2 here); one more is 409 document_limit and stores nothing; deleting one frees its place', async () => {
      const u = await createUser(t);
      const first = await create(u);
      assert.equal(first.status, 201, first.text);
      const template = await create(u, { title: 'Template', body: 'Fill in.\n', isTemplate: true });
      assert.equal(template.status, 201, template.text);
      const refused = await create(u);
      assert.equal(refused.status, 409, refused.text);
      assert.equal(refused.body.code, 'document_limit');
      assert.match(refused.headers.get('content-type') ?? '', /application\/problem\+json/);
      assert.equal((await create(u, { templateId: template.body.id })).status, 409, 'a document from a template counts too');
      assert.equal(await stored(u), 2, 'the refused creations stored nothing');
      assert.equal((await create(await createUser(t))).status, 201, 'the cap is per user');

      assert.equal((await t.api('PATCH', `/v1/documents/${first.body.id}`, { token: u.accessToken, body: { archived: true } })).status, 200);
      assert.equal((await create(u)).status, 409, 'an archived document is still held');

      assert.equal((await t.api('DELETE', `/v1/documents/${first.body.id}`, { token: u.accessToken })).status, 204);
      const again = await create(u);
      assert.equal(again.status, 201, 'a deleted document no longer counts');
      assert.equal((await create(u)).status, 409);
      assert.equal(await stored(u), 2);
    });

    test('creations side by side leave exactly the cap', () => checkCapRace(t, { create: (u) => create(u), held: stored }));
  });
}
