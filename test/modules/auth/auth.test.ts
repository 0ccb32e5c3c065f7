import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import * as argon2 from '@node-rs/argon2';
import { eq } from 'drizzle-orm';
import { SignJWT, generateKeyPair, decodeProtectedHeader } from 'jose';
import { users } from '../../../src/modules/users/schema.ts';
import { backends, startApp, type TestApp } from '../../support/app.ts';
import { createUser, uniqueEmail } from '../../support/factories.ts';

for (const backend of backends()) {
  describe(`auth core [${backend}]`, () => {
    let t: TestApp;
    before(async () => {
      t = await startApp({ backend, env: { REFRESH_REUSE_GRACE_SECONDS: '0' } });
    });
    after(() => t.close());

    test('register, then /users/me with the access token', async () => {
      const email = uniqueEmail();
      const reg = await t.api('POST', '/v1/auth/register', { body: { email: email.toUpperCase(), password: 'a good password', name: 'Ada' } });
      assert.equal(reg.status, 201);
      assert.equal(reg.body.tokenType, 'Bearer');
      assert.equal(reg.body.expiresIn, 900);
      assert.equal(reg.body.user.email, email, 'email is stored lower-cased');
      const me = await t.api('GET', '/v1/users/me', { token: reg.body.accessToken });
      assert.equal(me.status, 200);
      assert.equal(me.body.id, reg.body.user.id);
      assert.equal(me.body.name, 'Ada');
    });

    test('registering a taken email is a 409 problem', async () => {
      const u = await createUser(t);
      const res = await t.api('POST', '/v1/auth/register', { body: { email: u.email, password: 'another password' } });
      assert.equal(res.status, 409);
      assert.match(res.headers.get('content-type')!, /application\/problem\+json/);
      assert.equal(res.body.code, 'email_taken');
      assert.equal(res.body.status, 409);
    });

    test('password rules: length and not the email', async () => {
      const email = uniqueEmail();
      const short = await t.api('POST', '/v1/auth/register', { body: { email, password: 'short' } });
      assert.equal(short.status, 400);
      assert.equal(short.body.code, 'weak_password');
      const same = await t.api('POST', '/v1/auth/register', { body: { email, password: email } });
      assert.equal(same.status, 400);
      assert.equal(same.body.code, 'weak_password');
      const local = await t.api('POST', '/v1/auth/register', { body: { email, password: email.split('@')[0] } });
      assert.equal(local.body.code, 'weak_password');
    });

    test('passwords are compared normalized (NFKC) and measured in characters; a hash made before still signs in', async () => {
      // The same password typed on two systems: é as one code point, and as e + a combining accent.
      const email = uniqueEmail();
      const composed = 'caf\u00e9 au lait';
      const reg = await t.api('POST', '/v1/auth/register', { body: { email, password: 'cafe\u0301 au lait' } });
      assert.equal(reg.status, 201, reg.text);
      const login = await t.api('POST', '/v1/auth/login', { body: { email, password: composed } });
      assert.equal(login.status, 200, 'the composed form signs in');
      const wide = await t.api('POST', '/v1/auth/login', { body: { email, password: 'caf\u00e9\u3000au\u3000lait' } });
      assert.equal(wide.status, 200, 'an ideographic space is a space');
      // Four emoji are four characters, not the eight UTF-16 units they take.
      const emoji = await t.api('POST', '/v1/auth/register', { body: { email: uniqueEmail(), password: '\u{1F600}\u{1F601}\u{1F602}\u{1F603}' } });
      assert.equal(emoji.status, 400);
      assert.equal(emoji.body.code, 'weak_password');
      // A hash made from the text as typed, before normalizing: that text still signs in.
      const old = await createUser(t);
      const typed = 'cafe\u0301 old hash';
      await t.deps.db.update(users).set({ passwordHash: await argon2.hash(typed) }).where(eq(users.id, old.id));
      assert.equal((await t.api('POST', '/v1/auth/login', { body: { email: old.email, password: typed } })).status, 200);
      assert.equal((await t.api('POST', '/v1/auth/login', { body: { email: old.email, password: 'something else' } })).status, 401);
    });

    test('a sign-in that checked the old password while it was being changed keeps no session after the change', async () => {
      const u = await createUser(t);
      // Sign-ins with the old password, staggered across the change: each either lands before it (and is revoked
      // by it) or after it (and is refused); none may leave a session that still works.
      const logins = Array.from({ length: 12 }, (_, i) =>
        new Promise((r) => setTimeout(r, i * 15)).then(() => t.api('POST', '/v1/auth/login', { body: { email: u.email, password: u.password } })),
      );
      await new Promise((r) => setTimeout(r, 40));
      const change = await t.api('POST', '/v1/auth/password/change', { token: u.accessToken, body: { currentPassword: u.password, newPassword: 'the new password' } });
      assert.equal(change.status, 204, change.text);
      for (const res of await Promise.all(logins)) {
        if (res.status !== 200) {
          assert.ok(['invalid_credentials', 'credentials_changed'].includes(res.body.code), res.text);
          continue;
        }
        assert.equal((await t.api('GET', '/v1/users/me', { token: res.body.accessToken })).status, 401, 'its access token is refused');
        assert.equal((await t.api('POST', '/v1/auth/refresh', { body: { refreshToken: res.body.refreshToken } })).status, 401, 'its refresh token too');
      }
      // The checked-then-changed case itself: a session for the hash a sign-in saw opens nothing once it is not the account's.
      const before = (await t.services.users.byId(u.id))!.passwordHash;
      assert.notEqual(before, null);
      assert.equal(await t.services.sessions.open(u.id, 'password', {}, 'an older hash'), undefined);
      assert.ok(await t.services.sessions.open(u.id, 'password', {}, before), 'the current one opens');
    });

    test('login with a wrong password or unknown email gives the same 401', async () => {
      const u = await createUser(t);
      const wrong = await t.api('POST', '/v1/auth/login', { body: { email: u.email, password: 'wrong password' } });
      const unknown = await t.api('POST', '/v1/auth/login', { body: { email: uniqueEmail(), password: 'wrong password' } });
      assert.equal(wrong.status, 401);
      assert.equal(unknown.status, 401);
      assert.equal(wrong.body.code, 'invalid_credentials');
      assert.equal(wrong.body.detail, unknown.body.detail);
      const ok = await t.api('POST', '/v1/auth/login', { body: { email: u.email, password: u.password } });
      assert.equal(ok.status, 200);
      assert.ok(ok.body.accessToken);
    });

    test('access token is an EdDSA JWT whose kid is in the JWKS', async () => {
      const u = await createUser(t);
      const header = decodeProtectedHeader(u.accessToken);
      assert.equal(header.alg, 'EdDSA');
      const jwks = await t.api('GET', '/.well-known/jwks.json');
      assert.equal(jwks.status, 200);
      const key = jwks.body.keys.find((k: { kid: string }) => k.kid === header.kid);
      assert.ok(key, 'signing key is published');
      assert.equal(key.crv, 'Ed25519');
      assert.equal(key.d, undefined, 'no private part is published');
    });

    test('refresh rotates the token; the old one then revokes the whole session', async () => {
      const u = await createUser(t);
      const r1 = await t.api('POST', '/v1/auth/refresh', { body: { refreshToken: u.refreshToken } });
      assert.equal(r1.status, 200);
      assert.notEqual(r1.body.refreshToken, u.refreshToken);
      assert.equal(r1.body.sessionId, u.sessionId);
      const reuse = await t.api('POST', '/v1/auth/refresh', { body: { refreshToken: u.refreshToken } });
      assert.equal(reuse.status, 401);
      assert.equal(reuse.body.code, 'refresh_token_reused');
      // The family is gone: the newest token and the access token stop working too.
      const newest = await t.api('POST', '/v1/auth/refresh', { body: { refreshToken: r1.body.refreshToken } });
      assert.equal(newest.status, 401);
      const me = await t.api('GET', '/v1/users/me', { token: r1.body.accessToken });
      assert.equal(me.status, 401);
      assert.equal(me.body.code, 'session_revoked');
    });

    test('an unknown refresh token is a 401', async () => {
      const res = await t.api('POST', '/v1/auth/refresh', { body: { refreshToken: 'rt_nope' } });
      assert.equal(res.status, 401);
      assert.equal(res.body.code, 'invalid_refresh_token');
    });

    test('expired, tampered and foreign-key JWTs are refused', async () => {
      const u = await createUser(t);
      const [h, p, s] = u.accessToken.split('.');
      const claims = JSON.parse(Buffer.from(p!, 'base64url').toString());
      const tampered = [h, Buffer.from(JSON.stringify({ ...claims, role: 'admin', sub: '00000000-0000-7000-8000-000000000000' })).toString('base64url'), s].join('.');
      const r1 = await t.api('GET', '/v1/users/me', { token: tampered });
      assert.equal(r1.status, 401);
      assert.equal(r1.body.code, 'invalid_token');

      const { privateKey } = await generateKeyPair('EdDSA', { crv: 'Ed25519' });
      const kid = decodeProtectedHeader(u.accessToken).kid!;
      const forged = await new SignJWT({ sid: u.sessionId, role: 'user' })
        .setProtectedHeader({ alg: 'EdDSA', kid })
        .setSubject(u.id)
        .setIssuer('http://parley.test')
        .setAudience('parley')
        .setExpirationTime('5m')
        .sign(privateKey);
      assert.equal((await t.api('GET', '/v1/users/me', { token: forged })).status, 401, 'same kid, wrong key');
      const unknownKid = await new SignJWT({ sid: u.sessionId })
        .setProtectedHeader({ alg: 'EdDSA', kid: 'not-a-key' })
        .setSubject(u.id)
        .setIssuer('http://parley.test')
        .setAudience('parley')
        .setExpirationTime('5m')
        .sign(privateKey);
      assert.equal((await t.api('GET', '/v1/users/me', { token: unknownKid })).status, 401, 'unknown kid');

      const expired = await t.services.keys.sign({ sid: u.sessionId, role: 'user' }, { subject: u.id, audience: 'parley', issuer: 'http://parley.test', ttlSeconds: -10 });
      const r3 = await t.api('GET', '/v1/users/me', { token: expired });
      assert.equal(r3.status, 401);
      assert.equal(r3.body.code, 'token_expired');

      const noneAlg = `${Buffer.from(JSON.stringify({ alg: 'none', typ: 'JWT' })).toString('base64url')}.${p}.`;
      assert.equal((await t.api('GET', '/v1/users/me', { token: noneAlg })).status, 401, 'alg none');
    });

    test('rotated signing key: new tokens use the new kid, old tokens keep verifying', async () => {
      const u = await createUser(t);
      const oldKid = decodeProtectedHeader(u.accessToken).kid;
      const newKid = await t.services.keys.rotate();
      assert.notEqual(newKid, oldKid);
      assert.equal((await t.api('GET', '/v1/users/me', { token: u.accessToken })).status, 200, 'old token still verifies');
      const r = await t.api('POST', '/v1/auth/refresh', { body: { refreshToken: u.refreshToken } });
      assert.equal(decodeProtectedHeader(r.body.accessToken).kid, newKid);
      const kids = (await t.api('GET', '/.well-known/jwks.json')).body.keys.map((k: { kid: string }) => k.kid);
      assert.ok(kids.includes(oldKid) && kids.includes(newKid));
    });

    test('sessions: list, revoke one, logout, logout-all', async () => {
      const u = await createUser(t);
      const second = await t.api('POST', '/v1/auth/login', { body: { email: u.email, password: u.password }, headers: { 'user-agent': 'TestPhone/1.0' } });
      const list = await t.api('GET', '/v1/auth/sessions', { token: u.accessToken });
      assert.equal(list.status, 200);
      assert.equal(list.body.data.length, 2);
      const phone = list.body.data.find((s: { device: string }) => s.device === 'TestPhone/1.0');
      assert.ok(phone);
      assert.equal(phone.current, false);
      assert.equal(list.body.data.find((s: { current: boolean }) => s.current).id, u.sessionId);

      const del = await t.api('DELETE', `/v1/auth/sessions/${phone.id}`, { token: u.accessToken });
      assert.equal(del.status, 204);
      assert.equal((await t.api('GET', '/v1/users/me', { token: second.body.accessToken })).status, 401);
      assert.equal((await t.api('DELETE', `/v1/auth/sessions/${phone.id}`, { token: u.accessToken })).status, 404);

      const third = await t.api('POST', '/v1/auth/login', { body: { email: u.email, password: u.password } });
      // As clients that send `Content-Type: application/json` on every request do: no body at all.
      const allRes = await fetch(`${t.url}/v1/auth/logout-all`, { method: 'POST', headers: { authorization: `Bearer ${third.body.accessToken}`, 'content-type': 'application/json' } });
      const all = { status: allRes.status, body: (await allRes.json()) as { revoked: number } };
      assert.equal(all.status, 200, JSON.stringify(all.body));
      assert.equal(all.body.revoked, 2);
      assert.equal((await t.api('GET', '/v1/users/me', { token: u.accessToken })).status, 401);
      assert.equal((await t.api('POST', '/v1/auth/refresh', { body: { refreshToken: third.body.refreshToken } })).status, 401);
    });

    test('logout with a refresh token ends that session', async () => {
      const u = await createUser(t);
      const out = await t.api('POST', '/v1/auth/logout', { body: { refreshToken: u.refreshToken } });
      assert.equal(out.status, 204);
      assert.equal((await t.api('GET', '/v1/users/me', { token: u.accessToken })).status, 401);
    });

    test('logout with only the access token ends that session', async () => {
      const u = await createUser(t);
      assert.equal((await t.api('POST', '/v1/auth/logout', { token: u.accessToken })).status, 204);
      assert.equal((await t.api('POST', '/v1/auth/refresh', { body: { refreshToken: u.refreshToken } })).status, 401);
    });

    test('logout with the access token and a refresh token that matches nothing still ends the access token\'s session', async () => {
      const u = await createUser(t);
      const out = await t.api('POST', '/v1/auth/logout', { token: u.accessToken, body: { refreshToken: 'rt_bogus' } });
      assert.equal(out.status, 204);
      assert.equal((await t.api('GET', '/v1/users/me', { token: u.accessToken })).status, 401);
    });

    test('a text/plain body where JSON is expected is a 415, as any other type a route does not take', async () => {
      const res = await fetch(`${t.url}/v1/auth/login`, { method: 'POST', headers: { 'content-type': 'text/plain' }, body: '{"email":"a@b.c","password":"x"}' });
      assert.equal(res.status, 415);
      assert.equal(((await res.json()) as { code: string }).code, 'unsupported_media_type');
    });

    test('a disabled user is locked out at once', async () => {
      const u = await createUser(t);
      await t.services.users.setDisabled(u.id, true);
      assert.equal((await t.api('GET', '/v1/users/me', { token: u.accessToken })).body.code, 'account_disabled');
      assert.equal((await t.api('POST', '/v1/auth/refresh', { body: { refreshToken: u.refreshToken } })).status, 401);
      const login = await t.api('POST', '/v1/auth/login', { body: { email: u.email, password: u.password } });
      assert.equal(login.status, 403);
      assert.equal(login.body.code, 'account_disabled');
    });

    test('browser mode: httpOnly cookies, and an Origin check on state changes', async () => {
      const email = uniqueEmail();
      const reg = await t.api('POST', '/v1/auth/register', { body: { email, password: 'browser password', cookie: true } });
      assert.equal(reg.status, 201);
      assert.equal(reg.body.accessToken, undefined, 'tokens are not exposed to scripts');
      const cookies = reg.headers.getSetCookie();
      const access = cookies.find((c) => c.startsWith('parley_access='))!;
      const refresh = cookies.find((c) => c.startsWith('parley_refresh='))!;
      assert.match(access, /HttpOnly/);
      assert.match(access, /SameSite=Lax/);
      assert.doesNotMatch(access, /Secure/, 'not Secure on plain http');
      assert.match(refresh, /Path=\/v1\/auth/);
      const jar = [access, refresh].map((c) => c.split(';')[0]).join('; ');

      const me = await t.api('GET', '/v1/users/me', { headers: { cookie: jar } });
      assert.equal(me.status, 200);
      const noOrigin = await t.api('PATCH', '/v1/users/me', { body: { name: 'x' }, headers: { cookie: jar } });
      assert.equal(noOrigin.status, 403);
      assert.equal(noOrigin.body.code, 'origin_not_allowed');
      const evil = await t.api('PATCH', '/v1/users/me', { body: { name: 'x' }, headers: { cookie: jar, origin: 'https://evil.example' } });
      assert.equal(evil.status, 403);
      const good = await t.api('PATCH', '/v1/users/me', { body: { name: 'Cookie' }, headers: { cookie: jar, origin: 'http://parley.test' } });
      assert.equal(good.status, 200);
      assert.equal(good.body.name, 'Cookie');
      const own = await t.api('PATCH', '/v1/users/me', { body: { name: 'Console' }, headers: { cookie: jar, origin: t.url } });
      assert.equal(own.status, 200, "the server's own origin (the console it serves) is trusted whatever PUBLIC_URL says");
      const otherPort = await t.api('PATCH', '/v1/users/me', { body: { name: 'x' }, headers: { cookie: jar, origin: t.url.replace(/:\d+$/, ':1') } });
      assert.equal(otherPort.status, 403, 'another port is another origin');

      const refreshed = await t.api('POST', '/v1/auth/refresh', { headers: { cookie: jar, origin: 'http://parley.test' } });
      assert.equal(refreshed.status, 200);
      assert.equal(refreshed.body.refreshToken, undefined);
      assert.ok(refreshed.headers.getSetCookie().some((c) => c.startsWith('parley_refresh=')));
      const badRefresh = await t.api('POST', '/v1/auth/refresh', { headers: { cookie: jar } });
      assert.equal(badRefresh.status, 403);
    });

    test('malformed JSON, wrong types, unknown routes and huge bodies get problem responses', async () => {
      const malformed = await t.api('POST', '/v1/auth/login', { raw: '{"email": ' });
      assert.equal(malformed.status, 400);
      assert.equal(malformed.body.code, 'malformed_json');
      assert.ok(malformed.body.requestId);
      const wrongType = await t.api('POST', '/v1/auth/login', { body: { email: 42, password: ['x'] } });
      assert.equal(wrongType.status, 400);
      assert.equal(wrongType.body.code, 'validation_failed');
      assert.ok(Array.isArray(wrongType.body.errors));
      const missing = await t.api('GET', '/v1/nope');
      assert.equal(missing.status, 404);
      assert.equal(missing.body.code, 'route_not_found');
      const huge = await t.api('POST', '/v1/auth/login', { raw: JSON.stringify({ email: 'a@b.c', password: 'x'.repeat(2_000_000) }) });
      assert.equal(huge.status, 413);
      assert.equal(huge.body.code, 'body_too_large');
      const badAuth = await t.api('GET', '/v1/users/me', { headers: { authorization: 'Basic abc' } });
      assert.equal(badAuth.status, 401);
      assert.equal(badAuth.body.code, 'invalid_authorization_header');
    });

    test('request ids: echoed, and generated when absent', async () => {
      const given = await t.api('GET', '/health', { headers: { 'x-request-id': 'trace-123' } });
      assert.equal(given.headers.get('x-request-id'), 'trace-123');
      const generated = await t.api('GET', '/health');
      assert.match(generated.headers.get('x-request-id')!, /^[0-9a-f-]{36}$/);
    });
  });

  describe(`auth rate limits [${backend}]`, () => {
    let t: TestApp;
    before(async () => {
      // TRUST_PROXY: a test picks its client address.
      t = await startApp({ backend, env: { AUTH_RATE_LIMIT_PER_IP: '8', AUTH_RATE_LIMIT_PER_ACCOUNT: '3', TRUST_PROXY: 'true' } });
    });
    after(() => t.close());

    test('per-account failures lock sign-in for that email, existing or not, with Retry-After', async () => {
      const u = await createUser(t);
      for (const email of [u.email, uniqueEmail('ghost')]) {
        for (let i = 0; i < 3; i++) {
          const r = await t.api('POST', '/v1/auth/login', { body: { email, password: 'bad password' }, headers: { 'x-forwarded-for': '10.0.0.1' } });
          assert.equal(r.status, 401);
        }
        const locked = await t.api('POST', '/v1/auth/login', { body: { email, password: 'bad password' } });
        assert.equal(locked.status, 429);
        assert.equal(locked.body.code, 'too_many_attempts');
        assert.ok(Number(locked.headers.get('retry-after')) > 0);
      }
      // Even the right password waits out the lock.
      const right = await t.api('POST', '/v1/auth/login', { body: { email: u.email, password: u.password } });
      assert.equal(right.status, 429);
    });

    test('guesses sent together get no more password checks than the per-account limit', async () => {
      const other = await startApp({ backend, env: { AUTH_RATE_LIMIT_PER_IP: '1000', AUTH_RATE_LIMIT_PER_ACCOUNT: '3' } });
      try {
        const u = await createUser(other);
        const answers = await Promise.all(Array.from({ length: 20 }, () => other.api('POST', '/v1/auth/login', { body: { email: u.email, password: 'bad password' } })));
        const statuses = answers.map((r) => r.status);
        assert.equal(statuses.filter((s) => s === 401).length, 3, `checked: ${statuses.join(',')}`);
        assert.equal(statuses.filter((s) => s === 429).length, 17);
      } finally {
        await other.close();
      }
    });

    test('per-IP limit with RateLimit-* headers', async () => {
      let last;
      for (let i = 0; i < 9; i++) last = await t.api('POST', '/v1/auth/register', { body: { email: uniqueEmail(), password: 'short' } });
      assert.equal(last!.status, 429);
      assert.equal(last!.body.code, 'rate_limited');
      assert.equal(last!.headers.get('ratelimit-limit'), '8');
      assert.equal(last!.headers.get('ratelimit-remaining'), '0');
      assert.ok(Number(last!.headers.get('retry-after')) > 0);
    });

    test('an IPv6 client is limited by its /64, whichever address in it each request comes from', async () => {
      const from = (ip: string) => t.api('POST', '/v1/auth/register', { body: { email: uniqueEmail(), password: 'short' }, headers: { 'x-forwarded-for': ip } });
      for (let i = 1; i <= 8; i++) assert.equal((await from(`2001:db8:5:6::${i.toString(16)}`)).status, 400);
      const rotated = await from('2001:db8:5:6:ffff::9');
      assert.equal(rotated.status, 429, 'a ninth address of the same /64');
      assert.equal(rotated.body.code, 'rate_limited');
      assert.equal((await from('2001:db8:5:7::1')).status, 400, 'the next /64 is another client');
    });
  });
}

for (const backend of backends()) {
  describe(`refresh grace window [${backend}]`, () => {
    let t: TestApp;
    before(async () => {
      t = await startApp({ backend, env: { REFRESH_REUSE_GRACE_SECONDS: '30' } });
    });
    after(() => t.close());

    test('concurrent refreshes with one token all succeed within the grace window', async () => {
      const u = await createUser(t);
      const results = await Promise.all([1, 2, 3].map(() => t.api('POST', '/v1/auth/refresh', { body: { refreshToken: u.refreshToken } })));
      assert.deepEqual(results.map((r) => r.status), [200, 200, 200]);
      const tokens = new Set(results.map((r) => r.body.refreshToken));
      assert.equal(tokens.size, 3, 'each gets its own new token');
      for (const r of results) {
        assert.equal((await t.api('GET', '/v1/users/me', { token: r.body.accessToken })).status, 200, 'session not revoked');
      }
    });
  });
}
