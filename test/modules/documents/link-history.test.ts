import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { sql } from 'drizzle-orm';
import { backends, startApp, type TestApp } from '../../support/app.ts';
import { createUser } from '../../support/factories.ts';

for (const backend of backends()) {
  describe(`ended share links [${backend}]`, () => {
    let t: TestApp;
    before(async () => {
      t = await startApp({ backend });
    });
    after(() => t.close());

    test('links revoked or expired over DOCUMENTS_LINK_HISTORY_DAYS (30) ago are purged by documents.purge-links; recent and live ones stay', async () => {
      const u = await createUser(t);
      const admin = await createUser(t, { admin: true });
      const doc = await t.api('POST', '/v1/documents', { token: u.accessToken, body: { title: 'Plan', body: 'The plan.\n' } });
      assert.equal(doc.status, 201, doc.text);
      const docId = doc.body.id as string;
      const link = async () => {
        const res = await t.api('POST', `/v1/documents/${docId}/links`, { token: u.accessToken, body: { role: 'viewer' } });
        assert.equal(res.status, 201, res.text);
        return res.body as { id: string; token: string };
      };
      const [revokedLongAgo, expiredLongAgo, revokedLately, expiredLately, live] = await Promise.all(Array.from({ length: 5 }, link));
      const set = (id: string, column: 'revoked_at' | 'expires_at', daysAgo: number) =>
        t.deps.db.execute(sql`update document_links set ${sql.identifier(column)} = now() - make_interval(days => ${daysAgo}) where id = ${id}`);
      await set(revokedLongAgo!.id, 'revoked_at', 31);
      await set(expiredLongAgo!.id, 'expires_at', 31);
      await set(revokedLately!.id, 'revoked_at', 29);
      await set(expiredLately!.id, 'expires_at', 29);

      const schedules = (await t.api('GET', '/v1/admin/schedules', { token: admin.accessToken })).body.data;
      assert.equal(schedules.find((s: { name: string }) => s.name === 'documents.purge-links')?.cron, '37 4 * * *', 'the daily purge is scheduled');
      assert.ok((await t.services.documentSharing.purgeEndedLinks()) >= 2);

      const listed = (await t.api('GET', `/v1/documents/${docId}/links`, { token: u.accessToken })).body.data.map((l: { id: string }) => l.id);
      assert.deepEqual(listed.sort(), [revokedLately!.id, expiredLately!.id, live!.id].sort(), 'only the links that ended over 30 days ago are gone');
      const opened = await t.api('GET', '/v1/documents/shared', { token: u.accessToken, headers: { 'x-share-token': revokedLongAgo!.token } });
      assert.equal(opened.status, 404, 'a purged link is an unknown one');
      assert.equal(opened.body.code, 'link_not_found');
    });
  });
}
