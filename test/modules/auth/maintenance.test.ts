import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { eq } from 'drizzle-orm';
import { createKnownDevices } from '../../../src/modules/auth/devices.ts';
import { KNOWN_DEVICE_DAYS, purgeExpiredAuthRows } from '../../../src/modules/auth/maintenance.ts';
import { knownDevices, sessions } from '../../../src/modules/auth/schema.ts';
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
      const { passwordHash } = (await t.services.users.byId(u.id))!;
      const open = () => t.services.sessions.open(u.id, 'password', {}, passwordHash).then((s) => s!.session.id);
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

    test('forgets devices not signed in from for a year, keeps the others', async () => {
      const u = await createUser(t);
      const devices = createKnownDevices(t.deps.db);
      await devices.seen(u.id, { userAgent: 'Old Browser/1.0' });
      await devices.seen(u.id, { userAgent: 'Recent Browser/2.0' });
      const now = new Date();
      await t.deps.db.update(knownDevices).set({ lastSeenAt: new Date(now.getTime() - (KNOWN_DEVICE_DAYS + 1) * DAY) }).where(eq(knownDevices.description, 'Old Browser/1.0'));
      await t.deps.db.update(knownDevices).set({ lastSeenAt: new Date(now.getTime() - (KNOWN_DEVICE_DAYS - 1) * DAY) }).where(eq(knownDevices.description, 'Recent Browser/2.0'));

      await purgeExpiredAuthRows(t.deps.db, now);

      const left = (await t.deps.db.select({ d: knownDevices.description }).from(knownDevices).where(eq(knownDevices.userId, u.id))).map((r) => r.d);
      assert.deepEqual(left.filter((d) => d.endsWith('Browser/1.0') || d.endsWith('Browser/2.0')), ['Recent Browser/2.0']);
      assert.ok(left.length >= 2, 'the sign-up device, seen today, stays');
      assert.equal((await devices.seen(u.id, { userAgent: 'Old Browser/1.0' })).isNew, true, 'a forgotten device is new again');
    });
  });
}
