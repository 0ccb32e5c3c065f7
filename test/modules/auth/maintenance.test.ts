import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { eq } from 'drizzle-orm';
import { purgeExpiredAuthRows } from '../../../src/modules/auth/maintenance.ts';
import { sessions } from '../../../src/modules/auth/schema.ts';
import { backends, startApp, type TestApp } from '../../support/app.ts';
import { createUser } from '../../support/factories.ts';

const DAY = 24 * 3600 * 1000;

for (const backend of backends()) {
  describe(`auth maintenance [${backend}]`, () => {
    let t: TestApp;
    before(async () => {
      t = await startApp({ backend });
    });
    after(() => t.close());

    test('purges expired sessions and day-old revoked ones, keeps the rest', async () => {
      const u = await createUser(t);
      const open = () => t.services.sessions.open(u.id, 'password', {}).then((s) => s.session.id);
      const [expired, revokedLongAgo, revokedJustNow] = [await open(), await open(), await open()];
      const now = new Date();
      await t.deps.db.update(sessions).set({ expiresAt: new Date(now.getTime() - 1000) }).where(eq(sessions.id, expired));
      await t.deps.db.update(sessions).set({ revokedAt: new Date(now.getTime() - 2 * DAY) }).where(eq(sessions.id, revokedLongAgo));
      await t.deps.db.update(sessions).set({ revokedAt: now }).where(eq(sessions.id, revokedJustNow));

      await purgeExpiredAuthRows(t.deps.db, now);

      const left = (await t.deps.db.select({ id: sessions.id }).from(sessions).where(eq(sessions.userId, u.id))).map((r) => r.id).sort();
      assert.deepEqual(left, [u.sessionId, revokedJustNow].sort());
      assert.equal((await t.api('GET', '/v1/users/me', { token: u.accessToken })).status, 200, 'the live session still works');
    });
  });
}
