import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { sql } from 'drizzle-orm';
import { backends, startApp, type TestApp } from '../../support/app.ts';
import { createUser, type TestUser } from '../../support/factories.ts';

for (const backend of backends()) {
  describe(`share links per document [${backend}]`, () => {
    let t: TestApp;
    before(async () => {
      t = await startApp({ backend, env: { DOCUMENTS_MAX_LINKS_PER_DOCUMENT: '2' } });
    });
    after(() => t.close());

    const newDocument = async (u: TestUser) => {
      const res = await t.api('POST', '/v1/documents', { token: u.accessToken, body: { title: 'Plan', body: 'The plan.\n' } });
      assert.equal(res.status, 201, res.text);
      return res.body.id as string;
    };
    const link = (u: TestUser, docId: string) => t.api('POST', `/v1/documents/${docId}/links`, { token: u.accessToken, body: { role: 'viewer' } });
    const stored = async (u: TestUser, docId: string) => (await t.api('GET', `/v1/documents/${docId}/links`, { token: u.accessToken })).body.data.length;

    test('at most DOCUMENTS_MAX_LINKS_PER_DOCUMENT links open a document (2 here); one more is 409 link_limit and stores nothing; a revoked or expired one frees its place', async () => {
      const u = await createUser(t);
      const docId = await newDocument(u);
      const first = await link(u, docId);
      assert.equal(first.status, 201, first.text);
      const second = await link(u, docId);
      assert.equal(second.status, 201);
      const refused = await link(u, docId);
      assert.equal(refused.status, 409, refused.text);
      assert.equal(refused.body.code, 'link_limit');
      assert.match(refused.headers.get('content-type') ?? '', /application\/problem\+json/);
      assert.equal(await stored(u, docId), 2, 'the refused creation stored nothing');
      assert.equal((await link(u, await newDocument(u))).status, 201, 'the cap is per document');

      assert.equal((await t.api('DELETE', `/v1/documents/${docId}/links/${first.body.id}`, { token: u.accessToken })).status, 204);
      const third = await link(u, docId);
      assert.equal(third.status, 201, 'a revoked link no longer counts');
      assert.equal((await link(u, docId)).status, 409);

      await t.deps.db.execute(sql`update document_links set expires_at = now() - interval '1 second' where id = ${second.body.id}`);
      assert.equal((await link(u, docId)).status, 201, 'an expired link no longer counts');
      assert.equal((await link(u, docId)).status, 409);
    });

    test('creations side by side leave exactly the cap', async () => {
      const u = await createUser(t);
      const docId = await newDocument(u);
      const raced = await Promise.all(Array.from({ length: 8 }, () => link(u, docId)));
      assert.deepEqual(raced.map((r) => r.status).sort(), [201, 201, ...Array(6).fill(409)], raced.map((r) => r.text).join('\n'));
      assert.equal(await stored(u, docId), 2);
    });
  });
}
