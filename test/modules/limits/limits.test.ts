import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { AppError } from '../../../src/errors.ts';
import type { Principal } from '../../../src/modules/auth/authenticator.ts';
import { backends, startApp, type TestApp } from '../../support/app.ts';
import { createUser, type TestUser } from '../../support/factories.ts';

// Small limits; TRUST_PROXY lets each test pick its client address with X-Forwarded-For.
const ENV = {
  RATE_LIMIT_ENABLED: 'true',
  TRUST_PROXY: 'true',
  RATE_LIMIT_USER_RPM: '8',
  RATE_LIMIT_KEY_RPM: '2',
  RATE_LIMIT_IP_RPM: '10',
  RATE_LIMIT_USER_TPM: '1000',
  RATE_LIMIT_KEY_TPM: '500',
  RATE_LIMIT_ADMIN_USER_RPM: '10',
  RATE_LIMIT_ADMIN_KEY_RPM: '10',
  RATE_LIMIT_ADMIN_IP_RPM: '20',
  RATE_LIMIT_ADMIN_USER_TPM: '5000',
  RATE_LIMIT_ADMIN_KEY_TPM: '5000',
  RATE_LIMIT_BAN_VIOLATIONS: '0',
};

let ipSeq = 0;
/** A client address no other test uses. */
const freshIp = () => (++ipSeq, `10.1.${ipSeq >> 8}.${ipSeq & 255}`);

for (const backend of backends()) {
  describe(`rate limits [${backend}]`, () => {
    let t: TestApp;
    before(async () => {
      t = await startApp({ backend, env: ENV });
    });
    after(() => t.close());

    const me = (token: string, ip = freshIp()) => t.api('GET', '/v1/users/me', { token, headers: { 'x-forwarded-for': ip } });
    const newKey = async (u: TestUser) => {
      const res = await t.api('POST', '/v1/api-keys', { token: u.accessToken, body: { name: 'k' }, headers: { 'x-forwarded-for': freshIp() } });
      assert.equal(res.status, 201, res.text);
      return res.body as { id: string; key: string };
    };

    test('requests per minute per user: RateLimit-* headers count down, then 429 with Retry-After', async () => {
      const u = await createUser(t);
      for (let i = 7; i >= 0; i--) {
        const res = await me(u.accessToken);
        assert.equal(res.status, 200, res.text);
        assert.equal(res.headers.get('ratelimit-limit'), '8');
        assert.equal(res.headers.get('ratelimit-remaining'), String(i));
        assert.equal(res.headers.get('ratelimit-policy'), '8;w=60');
        const reset = Number(res.headers.get('ratelimit-reset'));
        assert.ok(reset >= 0 && reset <= 60, `reset ${reset}`);
      }
      const over = await me(u.accessToken);
      assert.equal(over.status, 429);
      assert.match(over.headers.get('content-type') ?? '', /application\/problem\+json/);
      assert.equal(over.body.code, 'rate_limited');
      assert.match(over.body.detail, /account/);
      const retryAfter = Number(over.headers.get('retry-after'));
      assert.ok(retryAfter >= 1 && retryAfter <= 60, `retry-after ${retryAfter}`);
      assert.equal(over.body.retryAfter, retryAfter);
      assert.equal(over.headers.get('ratelimit-remaining'), '0');
      // Someone else is not affected.
      assert.equal((await me((await createUser(t)).accessToken)).status, 200);
    });

    test('each API key has its own limit; the user limit covers keys and sessions together', async () => {
      const u = await createUser(t);
      const [k1, k2] = [await newKey(u), await newKey(u)];
      for (const remaining of ['1', '0']) {
        const res = await me(k1.key);
        assert.equal(res.status, 200, res.text);
        assert.equal(res.headers.get('ratelimit-limit'), '2', 'the key limit is the tightest');
        assert.equal(res.headers.get('ratelimit-remaining'), remaining);
      }
      const over = await me(k1.key);
      assert.equal(over.status, 429);
      assert.match(over.body.detail, /API key/);
      // k2 is untouched by k1's limit…
      assert.equal((await me(k2.key)).status, 200);
      assert.equal((await me(k2.key)).status, 200);
      // …but every request (creating the keys, and the refused one, too) counted for the user: one left.
      const last = await me(u.accessToken);
      assert.equal(last.status, 200);
      assert.equal(last.headers.get('ratelimit-limit'), '8');
      assert.equal(last.headers.get('ratelimit-remaining'), '0');
      const refused = await me(u.accessToken);
      assert.equal(refused.status, 429);
      assert.match(refused.body.detail, /account/);
    });

    test('each IP has its own limit, shared by every user behind it', async () => {
      const ip = freshIp();
      const a = await createUser(t);
      const b = await createUser(t);
      for (let i = 0; i < 6; i++) assert.equal((await me(a.accessToken, ip)).status, 200);
      for (const remaining of ['3', '2', '1', '0']) {
        const res = await me(b.accessToken, ip);
        assert.equal(res.status, 200);
        assert.equal(res.headers.get('ratelimit-limit'), '10', 'the IP limit is the tightest');
        assert.equal(res.headers.get('ratelimit-remaining'), remaining);
      }
      const refused = await me(b.accessToken, ip);
      assert.equal(refused.status, 429, 'b has not used up their own limit, but the address has');
      assert.match(refused.body.detail, /IP address/);
      assert.equal((await me(b.accessToken)).status, 200, 'from another address b is fine');
    });

    test('an IPv6 client is counted by its /64: addresses rotated within it share one limit', async () => {
      const net = `2001:db8:${(++ipSeq).toString(16)}:1`;
      const a = await createUser(t);
      const b = await createUser(t);
      for (let i = 1; i <= 5; i++) assert.equal((await me(a.accessToken, `${net}::${i.toString(16)}`)).status, 200);
      for (let i = 6; i <= 10; i++) {
        const res = await me(b.accessToken, `${net}:${i.toString(16)}:0:0:1`);
        assert.equal(res.status, 200);
        assert.equal(res.headers.get('ratelimit-limit'), '10', 'the /64 limit is the tightest');
        assert.equal(res.headers.get('ratelimit-remaining'), String(10 - i));
      }
      const refused = await me(b.accessToken, `${net}:ffff::abcd`);
      assert.equal(refused.status, 429, 'a fresh address in the same /64 is the same client');
      assert.match(refused.body.detail, /IP address/);
      assert.equal((await me(b.accessToken, `2001:db8:${(++ipSeq).toString(16)}:1::1`)).status, 200, 'another /64 has its own limit');
    });

    test('admins have limits of their own, counted apart from the users behind the same IP', async () => {
      const ip = freshIp();
      const admin = await createUser(t, { admin: true });
      for (let i = 9; i >= 0; i--) {
        const res = await me(admin.accessToken, ip);
        assert.equal(res.status, 200, res.text);
        assert.equal(res.headers.get('ratelimit-limit'), '10');
        assert.equal(res.headers.get('ratelimit-remaining'), String(i));
      }
      assert.equal((await me(admin.accessToken, ip)).status, 429);
      const u = await createUser(t);
      for (let i = 0; i < 8; i++) assert.equal((await me(u.accessToken, ip)).status, 200, "the admin's requests did not use the users' IP budget");
    });

    test('routes without authentication are not counted', async () => {
      const ip = freshIp();
      for (let i = 0; i < 12; i++) assert.equal((await t.api('GET', '/v1/models', { headers: { 'x-forwarded-for': ip } })).status, 401);
      const u = await createUser(t);
      const res = await me(u.accessToken, ip);
      assert.equal(res.status, 200);
      assert.equal(res.headers.get('ratelimit-remaining'), '7');
    });

    describe('tokens per minute', () => {
      const principal = (over: Partial<Principal> = {}): Principal => ({ userId: randomUUID(), role: 'user', via: 'session', scopes: [], ...over });
      const refusal = async (p: Principal) => {
        const err = await t.services.limits.checkTokens(p).then(
          () => assert.fail('expected a 429'),
          (e: unknown) => e,
        );
        assert.ok(err instanceof AppError);
        return err;
      };

      test('addTokens never refuses; the next checkTokens does, with Retry-After', async () => {
        const p = principal({ via: 'api_key', apiKeyId: randomUUID() });
        await t.services.limits.checkTokens(p);
        t.services.limits.addTokens(p, 400);
        await t.services.limits.checkTokens(p);
        t.services.limits.addTokens(p, 200); // key: 600 of 500
        const err = await refusal(p);
        assert.equal(err.status, 429);
        assert.equal(err.code, 'token_rate_limited');
        assert.match(err.message, /API key/);
        const retryAfter = Number(err.headers['retry-after']);
        assert.ok(retryAfter >= 1 && retryAfter <= 60, `retry-after ${retryAfter}`);
        t.services.limits.addTokens(p, 10_000); // still no throw
      });

      test('keys have their own token budget; the user budget covers them all', async () => {
        const userId = randomUUID();
        const k1 = principal({ userId, via: 'api_key', apiKeyId: randomUUID() });
        const k2 = principal({ userId, via: 'api_key', apiKeyId: randomUUID() });
        t.services.limits.addTokens(k1, 500);
        assert.equal((await refusal(k1)).code, 'token_rate_limited');
        await t.services.limits.checkTokens(k2);
        const session = principal({ userId });
        await t.services.limits.checkTokens(session);
        t.services.limits.addTokens(k2, 499);
        await t.services.limits.checkTokens(k2);
        await t.services.limits.checkTokens(session);
        t.services.limits.addTokens(session, 1); // user: 1000 of 1000
        assert.match((await refusal(session)).message, /account/);
        assert.equal((await refusal(k2)).code, 'token_rate_limited');
      });

      test('tokens count in this process at once, and reach the shared counters together moments later', async () => {
        const p = principal({ via: 'api_key', apiKeyId: randomUUID() }); // 500 a minute
        t.services.limits.addTokens(p, 300);
        await t.services.limits.checkTokens(p);
        t.services.limits.addTokens(p, 300);
        assert.equal((await refusal(p)).code, 'token_rate_limited', 'counted here before they are written');
        if (backend !== 'postgres') return;
        // Another instance reads the shared counters only: it sees them once written.
        const other = await startApp({ sharedWith: t, env: ENV });
        try {
          const deadline = Date.now() + 5000;
          let refused = false;
          while (!refused && Date.now() < deadline) refused = await other.services.limits.checkTokens(p).then(() => false, () => true);
          assert.ok(refused, 'the other instance refuses too');
          const q = principal({ via: 'api_key', apiKeyId: randomUUID() });
          t.services.limits.addTokens(q, 600);
          await t.services.limits.close(); // a graceful stop writes them at once
          assert.equal((await other.services.limits.checkTokens(q).then(() => undefined, (e: AppError) => e))?.code, 'token_rate_limited');
        } finally {
          await other.close();
        }
      });

      test('a busy subject\'s token counters are read from Redis a few times, not once per call', { skip: backend !== 'postgres' }, async (t2) => {
        const monitor = await t.deps.redis!.monitor();
        t2.after(() => monitor.disconnect());
        const p = principal({ via: 'api_key', apiKeyId: randomUUID() });
        const reads: string[] = [];
        monitor.on('monitor', (_time: string, args: string[], source: string) => {
          if (source !== 'lua' && args.some((a) => String(a).includes(p.userId))) reads.push(String(args[0]));
        });
        for (let i = 0; i < 20; i++) await t.services.limits.checkTokens(p);
        t.services.limits.addTokens(p, 600);
        await t.services.limits.close();
        assert.equal((await refusal(p)).code, 'token_rate_limited', 'what this process wrote after its read counts with the read');
        await t.deps.redis!.ping();
        await new Promise((r) => setTimeout(r, 100));
        // Without the reuse: 21 reads and the write. With it: the first read and the write (and another read
        // for each 20 ms the checks might take on a slow machine).
        assert.ok(reads.length >= 2 && reads.length < 12, `${reads.length} commands for 21 checks and one write: ${reads.join(' ')}`);
      });

      test('tokens being written while their counter is read are counted once', async () => {
        const p = principal({ via: 'api_key', apiKeyId: randomUUID() }); // 500 a minute
        t.services.limits.addTokens(p, 200);
        // The write and the read are sent together; neither the store's count nor this process's may count them twice.
        await Promise.all([t.services.limits.close(), t.services.limits.checkTokens(p)]);
        t.services.limits.addTokens(p, 200);
        await t.services.limits.checkTokens(p); // 400 of 500
        await t.services.limits.close();
        await t.services.limits.checkTokens(p);
        t.services.limits.addTokens(p, 100);
        assert.equal((await refusal(p)).code, 'token_rate_limited', '500 of 500');
      });

      test('admins have a larger token budget; zero or fractional counts are harmless', async () => {
        const admin = principal({ role: 'admin' });
        t.services.limits.addTokens(admin, 4_999);
        await t.services.limits.checkTokens(admin);
        t.services.limits.addTokens(admin, 0);
        t.services.limits.addTokens(admin, -5);
        await t.services.limits.checkTokens(admin);
        t.services.limits.addTokens(admin, 0.2); // rounds up to one token
        assert.equal((await refusal(admin)).code, 'token_rate_limited');
      });
    });
  });

  describe(`rate limits set to 0 are unlimited [${backend}]`, () => {
    let t: TestApp;
    before(async () => {
      t = await startApp({
        backend,
        env: { RATE_LIMIT_ENABLED: 'true', RATE_LIMIT_USER_RPM: '0', RATE_LIMIT_KEY_RPM: '0', RATE_LIMIT_IP_RPM: '0', RATE_LIMIT_USER_TPM: '0', RATE_LIMIT_KEY_TPM: '0' },
      });
    });
    after(() => t.close());

    test('no RateLimit headers, no refusals', async () => {
      const u = await createUser(t);
      for (let i = 0; i < 30; i++) {
        const res = await t.api('GET', '/v1/users/me', { token: u.accessToken });
        assert.equal(res.status, 200);
        assert.equal(res.headers.get('ratelimit-limit'), null);
      }
      const p: Principal = { userId: u.id, role: 'user', via: 'session', scopes: [] };
      t.services.limits.addTokens(p, 10_000_000);
      await t.services.limits.checkTokens(p);
    });
  });
}
