import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { backends, startApp, type TestApp } from '../../support/app.ts';
import { createUser } from '../../support/factories.ts';

for (const backend of backends()) {
  describe(`share links, page by page [${backend}]`, () => {
    let t: TestApp;
    before(async () => {
      t = await startApp({ backend });
    });
    after(() => t.close());

    test('GET …/links is cursor-paginated, oldest first, revoked ones included; without limit, the default page of 20', async () => {
      const u = await createUser(t);
      const doc = await t.api('POST', '/v1/documents', { token: u.accessToken, body: { title: 'Plan', body: 'The plan.\n' } });
      assert.equal(doc.status, 201, doc.text);
      const docId = doc.body.id as string;
      const made: string[] = [];
      for (let i = 0; i < 23; i++) {
        const res = await t.api('POST', `/v1/documents/${docId}/links`, { token: u.accessToken, body: { role: 'viewer' } });
        assert.equal(res.status, 201, res.text);
        made.push(res.body.id);
      }
      assert.equal((await t.api('DELETE', `/v1/documents/${docId}/links/${made[4]}`, { token: u.accessToken })).status, 204);

      const first = await t.api('GET', `/v1/documents/${docId}/links`, { token: u.accessToken });
      assert.equal(first.status, 200, first.text);
      assert.deepEqual(first.body.data.map((l: { id: string }) => l.id), made.slice(0, 20), 'the default page: the 20 oldest');
      assert.equal(typeof first.body.nextCursor, 'string');
      assert.ok(first.body.data[4].revokedAt, 'a revoked link is listed');
      const rest = await t.api('GET', `/v1/documents/${docId}/links?cursor=${first.body.nextCursor}`, { token: u.accessToken });
      assert.deepEqual(rest.body.data.map((l: { id: string }) => l.id), made.slice(20));
      assert.equal(rest.body.nextCursor, null);

      const seen: string[] = [];
      let cursor: string | null = null;
      do {
        const res: any = await t.api('GET', `/v1/documents/${docId}/links?limit=7${cursor ? `&cursor=${cursor}` : ''}`, { token: u.accessToken });
        assert.equal(res.status, 200, res.text);
        assert.ok(res.body.data.length <= 7);
        seen.push(...res.body.data.map((l: { id: string }) => l.id));
        cursor = res.body.nextCursor;
      } while (cursor);
      assert.deepEqual(seen, made, 'every link once, in order');
    });

    test('a bad limit or cursor is a 400 problem; another owner reads no page', async () => {
      const u = await createUser(t);
      const docId = (await t.api('POST', '/v1/documents', { token: u.accessToken, body: { title: 'Plan', body: 'The plan.\n' } })).body.id as string;
      for (const query of ['limit=0', 'limit=101', 'limit=x', 'cursor=bm90LWEtdXVpZA']) {
        const res = await t.api('GET', `/v1/documents/${docId}/links?${query}`, { token: u.accessToken });
        assert.equal(res.status, 400, `${query}: ${res.text}`);
        assert.match(res.headers.get('content-type') ?? '', /application\/problem\+json/);
      }
      const stranger = await createUser(t);
      assert.equal((await t.api('GET', `/v1/documents/${docId}/links?limit=5`, { token: stranger.accessToken })).status, 404);
    });
  });
}
