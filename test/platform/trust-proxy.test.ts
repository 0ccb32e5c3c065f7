import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { startApp, type TestApp } from '../support/app.ts';
import { createUser } from '../support/factories.ts';

/**
 * Behind proxies that append to X-Forwarded-For (a load balancer, a CDN), its first addresses are whatever the
 * client wrote: TRUST_PROXY as the proxies' addresses takes the client's address from the right end, where only
 * the proxies wrote. The address a session was opened from shows which one Parley took.
 */
describe('TRUST_PROXY: the client address behind proxies that append to X-Forwarded-For', () => {
  const apps: Record<string, TestApp> = {};
  before(async () => {
    apps.all = await startApp({ env: { TRUST_PROXY: 'true' } });
    apps.ranges = await startApp({ env: { TRUST_PROXY: 'loopback, 10.0.0.0/8' } });
  });
  after(async () => {
    for (const app of Object.values(apps)) await app.close();
  });

  /** Signs in through the given X-Forwarded-For and answers the address the new session shows. */
  async function addressSeen(t: TestApp, forwardedFor: string): Promise<string> {
    const user = await createUser(t);
    const login = await t.api('POST', '/v1/auth/login', { body: { email: user.email, password: user.password }, headers: { 'x-forwarded-for': forwardedFor } });
    assert.equal(login.status, 200, login.text);
    const sessions = await t.api('GET', '/v1/auth/sessions', { token: login.body.accessToken });
    assert.equal(sessions.status, 200, sessions.text);
    const current = sessions.body.data.find((s: any) => s.current) ?? sessions.body.data[0];
    return current.ip;
  }

  test('true: the first address, as written (right only behind a proxy that overwrites the header)', async () => {
    assert.equal(await addressSeen(apps.all!, '6.6.6.6, 203.0.113.7, 10.1.2.3'), '6.6.6.6');
  });

  test("the proxies' addresses and ranges: every trusted hop from the right is skipped, the first other one is the client", async () => {
    assert.equal(await addressSeen(apps.ranges!, '6.6.6.6, 203.0.113.9, 10.1.2.3, 10.9.9.9'), '203.0.113.9');
    // A forged hop in a trusted range before the client's own address is never reached.
    assert.equal(await addressSeen(apps.ranges!, '10.6.6.6, 198.51.100.4'), '198.51.100.4');
  });
});
