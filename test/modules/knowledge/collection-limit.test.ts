import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { backends, startApp, type TestApp } from '../../support/app.ts';
import type { TestUser } from '../../support/factories.ts';
import { checkCap, checkCapRace, type CapCase } from '../../support/per-user-cap.ts';

for (const backend of backends()) {
  describe(`knowledge collections per user [${backend}]`, () => {
    let t: TestApp;
    before(async () => {
      t = await startApp({ backend, env: { KNOWLEDGE_MAX_COLLECTIONS: '2' } });
    });
    after(() => t.close());

    const collections: CapCase = {
      code: 'collection_limit',
      create: (u: TestUser, name: string) => t.api('POST', '/v1/knowledge/collections', { token: u.accessToken, body: { name } }),
      held: async (u: TestUser) => (await t.api('GET', '/v1/knowledge/collections?limit=100', { token: u.accessToken })).body.data.length,
      remove: async (u, created) => assert.equal((await t.api('DELETE', `/v1/knowledge/collections/${created.body.id}`, { token: u.accessToken })).status, 204),
    };

    test('a user holds at most KNOWLEDGE_MAX_COLLECTIONS collections (2 here); one more is 409 collection_limit and stores nothing; a deleted one frees its place', () => checkCap(t, collections));

    test('creations side by side leave exactly the cap', () => checkCapRace(t, collections));
  });
}
