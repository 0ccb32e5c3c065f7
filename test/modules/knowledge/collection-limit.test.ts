import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { backends, startApp, type TestApp } from '../../support/app.ts';
import { createUser, type TestUser } from '../../support/factories.ts';

for (const backend of backends()) {
  describe(`knowledge collections per user [${backend}]`, () => {
    let t: TestApp;
    before(async () => {
      t = await startApp({ backend, env: { KNOWLEDGE_MAX_COLLECTIONS: '2' } });
    });
    after(() => t.close());

    const create = (u: TestUser, name = 'Notes') => t.api('POST', '/v1/knowledge/collections', { token: u.accessToken, body: { name } });
    const held = async (u: TestUser) => (await t.api('GET', '/v1/knowledge/collections?limit=100', { token: u.accessToken })).body.data.length;

    test('a user holds at most KNOWLEDGE_MAX_COLLECTIONS collections (2 here); one more is 409 collection_limit and stores nothing; a deleted one frees its place', async () => {
      const u = await createUser(t);
      const other = await createUser(t);
      const first = await create(u, 'first');
      assert.equal(first.status, 201, first.text);
      assert.equal((await create(u, 'second')).status, 201);
      const refused = await create(u, 'third');
      assert.equal(refused.status, 409, refused.text);
      assert.equal(refused.body.code, 'collection_limit');
      assert.match(refused.headers.get('content-type') ?? '', /application\/problem\+json/);
      assert.equal(await held(u), 2, 'the refused creation stored nothing');
      assert.equal((await create(other)).status, 201, 'the cap is per user');
      assert.equal((await t.api('DELETE', `/v1/knowledge/collections/${first.body.id}`, { token: u.accessToken })).status, 204);
      assert.equal((await create(u, 'again')).status, 201);
      assert.equal((await create(u, 'over')).status, 409);
    });

    test('creations side by side leave exactly the cap', async () => {
      const u = await createUser(t);
      const raced = await Promise.all(Array.from({ length: 8 }, (_, i) => create(u, `racer ${i}`)));
      assert.deepEqual(raced.map((r) => r.status).sort(), [201, 201, ...Array(6).fill(409)], raced.map((r) => r.text).join('\n'));
      assert.equal(await held(u), 2);
    });
  });
}
