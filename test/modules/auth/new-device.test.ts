import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { backends, startApp, type TestApp } from '../../support/app.ts';
import { eventually } from '../../support/eventually.ts';
import { uniqueEmail } from '../../support/factories.ts';
import { deviceFingerprint } from '../../../src/modules/auth/devices.ts';

const CHROME_WINDOWS = 'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.6478.61 Safari/537.36';
const CHROME_WINDOWS_UPDATED = 'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/127.0.6533.72 Safari/537.36';
const FIREFOX_LINUX = 'Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0';
const SAFARI_IPHONE = 'Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1';
const PASSWORD = 'correct horse battery staple';

describe('device fingerprints', () => {
  test('the same browser and OS at another version is the same device; another browser or OS is not', () => {
    assert.equal(deviceFingerprint(CHROME_WINDOWS), deviceFingerprint(CHROME_WINDOWS_UPDATED));
    assert.notEqual(deviceFingerprint(CHROME_WINDOWS), deviceFingerprint(FIREFOX_LINUX));
    assert.notEqual(deviceFingerprint(CHROME_WINDOWS), deviceFingerprint(CHROME_WINDOWS.replace('Windows NT 10.0; Win64; x64', 'Macintosh; Intel Mac OS X 10_15_7')));
    assert.equal(deviceFingerprint(undefined), deviceFingerprint(''), 'no User-Agent: one unknown device');
  });
});

for (const backend of backends()) {
  describe(`auth: security.sign-in for a new device [${backend}]`, () => {
    let t: TestApp;
    before(async () => {
      t = await startApp({ backend });
    });
    after(() => t?.close());

    async function register(userAgent: string) {
      const email = uniqueEmail();
      const res = await t.api('POST', '/v1/auth/register', { body: { email, password: PASSWORD }, headers: { 'user-agent': userAgent } });
      assert.equal(res.status, 201, res.text);
      return { email, id: res.body.user.id as string, token: res.body.accessToken as string };
    }

    async function login(email: string, userAgent: string) {
      const res = await t.api('POST', '/v1/auth/login', { body: { email, password: PASSWORD }, headers: { 'user-agent': userAgent } });
      assert.equal(res.status, 200, res.text);
      return res.body.accessToken as string;
    }

    const signInNotices = async (token: string) => {
      const res = await t.api('GET', '/v1/notifications', { token });
      assert.equal(res.status, 200, res.text);
      return res.body.data.filter((n: { category: string }) => n.category === 'security.sign-in');
    };

    test('the sign-up device and the same one again (updated) are silent; a new one notifies once, naming it; another user’s devices do not count', async () => {
      const u = await register(CHROME_WINDOWS);
      await login(u.email, CHROME_WINDOWS);
      await login(u.email, CHROME_WINDOWS_UPDATED);
      // Known devices are decided as the session opens: nothing was announced for these.
      assert.deepEqual(await signInNotices(u.token), []);

      await login(u.email, FIREFOX_LINUX);
      const [notice, ...more] = await eventually(async () => {
        const found = await signInNotices(u.token);
        assert.ok(found.length > 0, 'not yet notified');
        return found;
      });
      assert.deepEqual(more, []);
      assert.equal(notice.title, 'New sign-in to your account');
      assert.equal(notice.priority, 'high');
      assert.ok(notice.body.includes(FIREFOX_LINUX), notice.body);
      assert.ok(notice.body.includes('127.0.0.1'), notice.body);
      assert.match(notice.body, /\d{4}-\d\d-\d\d \d\d:\d\d UTC/);
      assert.equal(notice.data.device, FIREFOX_LINUX);
      assert.equal(notice.data.method, 'password');
      assert.equal(notice.channels.inApp.status, 'sent');
      assert.ok(['queued', 'sent'].includes(notice.channels.email.status), 'email is on by default');

      // Firefox again: known now.
      await login(u.email, FIREFOX_LINUX);

      // Another user signs up on Safari, then signs in from the first user's Chrome: new to them all the same.
      const other = await register(SAFARI_IPHONE);
      await login(other.email, CHROME_WINDOWS);
      const theirs = await eventually(async () => {
        const found = await signInNotices(other.token);
        assert.equal(found.length, 1);
        return found[0];
      });
      assert.equal(theirs.data.device, CHROME_WINDOWS);
      assert.equal((await signInNotices(u.token)).length, 1, 'the first user still has the one notice');
    });

    test('concurrent sign-ins from one new device notify once', async () => {
      const u = await register(CHROME_WINDOWS);
      await Promise.all([login(u.email, SAFARI_IPHONE), login(u.email, SAFARI_IPHONE), login(u.email, SAFARI_IPHONE)]);
      await login(u.email, FIREFOX_LINUX);
      // Firefox's notice (announced last) is there once each earlier one had its chance to be.
      const devices = await eventually(async () => {
        const all = (await signInNotices(u.token)).map((n: { data: { device: string } }) => n.data.device);
        assert.ok(all.includes(FIREFOX_LINUX) && all.includes(SAFARI_IPHONE));
        return all;
      });
      assert.equal(devices.filter((d: string) => d === SAFARI_IPHONE).length, 1, 'one of the three sessions announced the new device');
    });
  });
}
