import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { backends, startApp, type TestApp } from '../../support/app.ts';
import { createUser, type TestUser } from '../../support/factories.ts';

for (const backend of backends()) {
  describe(`comments per document [${backend}]`, () => {
    let t: TestApp;
    before(async () => {
      t = await startApp({ backend, env: { DOCUMENTS_MAX_COMMENTS: '2' } });
    });
    after(() => t.close());

    const newDocument = async (u: TestUser) => {
      const res = await t.api('POST', '/v1/documents', { token: u.accessToken, body: { title: 'Plan', body: 'The plan is short.\n' } });
      assert.equal(res.status, 201, res.text);
      return res.body.id as string;
    };
    const thread = (u: TestUser, docId: string) => t.api('POST', `/v1/documents/${docId}/comments`, { token: u.accessToken, body: { body: 'Why?', quote: 'plan' } });
    const stored = async (u: TestUser, docId: string) => (await t.api('GET', `/v1/documents/${docId}/comments?limit=100`, { token: u.accessToken })).body.data.length;

    test('a document holds at most DOCUMENTS_MAX_COMMENTS comments (2 here), replies included; one more is 409 comment_limit and stores nothing; deleting frees places', async () => {
      const u = await createUser(t);
      const docId = await newDocument(u);
      const root = await thread(u, docId);
      assert.equal(root.status, 201, root.text);
      const reply = await t.api('POST', `/v1/documents/${docId}/comments`, { token: u.accessToken, body: { body: 'Because.', parentId: root.body.id } });
      assert.equal(reply.status, 201, reply.text);
      const refused = await thread(u, docId);
      assert.equal(refused.status, 409, refused.text);
      assert.equal(refused.body.code, 'comment_limit');
      assert.match(refused.headers.get('content-type') ?? '', /application\/problem\+json/);

      const link = await t.api('POST', `/v1/documents/${docId}/links`, { token: u.accessToken, body: { role: 'commenter' } });
      assert.equal(link.status, 201, link.text);
      const byLink = await t.api('POST', '/v1/documents/shared/comments', { token: (await createUser(t)).accessToken, headers: { 'x-share-token': link.body.token }, body: { body: 'And?', quote: 'plan' } });
      assert.equal(byLink.status, 409, 'a comment through a share link counts too');
      assert.equal(byLink.body.code, 'comment_limit');
      assert.equal(await stored(u, docId), 2, 'the refused comments stored nothing');
      assert.equal((await thread(u, await newDocument(u))).status, 201, 'the cap is per document');

      assert.equal((await t.api('DELETE', `/v1/documents/${docId}/comments/${root.body.id}`, { token: u.accessToken })).status, 204);
      assert.equal((await thread(u, docId)).status, 201, 'a deleted thread, its reply with it, no longer counts');
      assert.equal((await thread(u, docId)).status, 201);
      assert.equal((await thread(u, docId)).status, 409);
    });

    test('comments side by side leave exactly the cap', async () => {
      const u = await createUser(t);
      const docId = await newDocument(u);
      const raced = await Promise.all(Array.from({ length: 8 }, () => thread(u, docId)));
      assert.deepEqual(raced.map((r) => r.status).sort(), [201, 201, ...Array(6).fill(409)], raced.map((r) => r.text).join('\n'));
      assert.equal(await stored(u, docId), 2);
    });
  });
}
