import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { eq } from 'drizzle-orm';
import { randomPKCECodeVerifier } from 'openid-client';
import { emailVerifiedBy } from '../../../src/modules/auth/oauth/oidc.ts';
import { oauthAccounts, oauthFlows, totpFactors } from '../../../src/modules/auth/schema.ts';
import { backends, startApp, type TestApp } from '../../support/app.ts';
import { createUser, uniqueEmail } from '../../support/factories.ts';
import { s256, startMockOidc, type MockOidc } from '../../support/mock-oidc.ts';
import { tokenIn, waitForMails } from '../../support/mail.ts';
import { authorizeAtProvider, signInWith, startAtProvider } from '../../support/oauth-flow.ts';

const person = (over: Record<string, unknown> = {}) => ({ sub: `sub-${randomUUID()}`, email: uniqueEmail('oidc'), email_verified: true, name: 'Ada Lovelace', ...over });
const stateOf = (callbackPath: string) => new URL(callbackPath, 'http://x').searchParams.get('state')!;

for (const backend of backends()) {
  describe(`oauth sign-in with OpenID Connect [${backend}]`, () => {
    let t: TestApp;
    let idp: MockOidc;
    before(async () => {
      idp = await startMockOidc();
      // TRUST_PROXY: a test picks its client address (bans).
      t = await startApp({ backend, env: { ...idp.env, TRUST_PROXY: 'true' } });
    });
    after(async () => {
      await t.close();
      await idp.close();
    });

    const linksOf = (userId: string) => t.deps.db.select().from(oauthAccounts).where(eq(oauthAccounts.userId, userId));

    test('providers are listed publicly; an unknown one is a 404', async () => {
      const list = await t.api('GET', '/v1/auth/providers');
      assert.equal(list.status, 200);
      assert.deepEqual(list.body.data, [{ id: 'oidc', authorizeUrl: '/v1/auth/oauth/oidc/authorize' }]);
      for (const path of ['/v1/auth/oauth/nope/authorize', '/v1/auth/oauth/nope/callback?code=a&state=b']) {
        const res = await t.api('GET', path);
        assert.equal(res.status, 404);
        assert.equal(res.body.code, 'oauth_provider_not_found');
      }
    });

    test('a first sign-in creates a password-less user; the next one finds the same user', async () => {
      const who = person();
      idp.signInAs(who);
      const first = await signInWith(t, 'oidc');
      assert.equal(first.status, 200, first.text);
      assert.equal(first.body.user.email, who.email);
      assert.equal(first.body.user.emailVerified, true);
      assert.equal(first.body.user.hasPassword, false);
      assert.equal(first.body.user.name, 'Ada Lovelace');
      const me = await t.api('GET', '/v1/users/me', { token: first.body.accessToken });
      assert.equal(me.body.id, first.body.user.id);
      const sessions = await t.api('GET', '/v1/auth/sessions', { token: first.body.accessToken });
      assert.equal(sessions.body.data[0].method, 'oauth:oidc');

      idp.signInAs({ ...who, email: uniqueEmail('changed') });
      const again = await signInWith(t, 'oidc');
      assert.equal(again.status, 200);
      assert.equal(again.body.user.id, first.body.user.id, 'found by provider and subject, not by email');
      assert.notEqual(again.body.sessionId, first.body.sessionId);
    });

    test("a deleted account's identity is let go at once: signing in with it again makes a new account", async () => {
      const who = person();
      idp.signInAs(who);
      const first = await signInWith(t, 'oidc');
      assert.equal(first.status, 200, first.text);
      // Password-less, signed in moments ago: no password needed.
      const del = await t.api('DELETE', '/v1/users/me', { token: first.body.accessToken });
      assert.equal(del.status, 204, del.text);
      // Gone with the deletion itself, not later with the rest of the account's rows.
      assert.deepEqual(await linksOf(first.body.user.id), []);
      idp.signInAs(who);
      const again = await signInWith(t, 'oidc');
      assert.equal(again.status, 200, again.text);
      assert.notEqual(again.body.user.id, first.body.user.id);
      assert.equal(again.body.user.email, who.email);
    });

    test("a provider's name is kept as a display name is: one line, no direction overrides, at most 200 characters", async () => {
      idp.signInAs(person({ name: 'Ada\n\nSECURITY ALERT: visit https://evil.test\u202E now' }));
      const first = await signInWith(t, 'oidc');
      assert.equal(first.status, 200, first.text);
      assert.equal(first.body.user.name, 'Ada SECURITY ALERT: visit https://evil.test now');
      idp.signInAs(person({ name: `${'x'.repeat(199)}\u{1F600}` }));
      const long = await signInWith(t, 'oidc');
      assert.equal(long.body.user.name, 'x'.repeat(199), 'cut whole, not inside the emoji');
      idp.signInAs(person({ name: '\u202E\n' }));
      assert.equal((await signInWith(t, 'oidc')).body.user.name, null, 'nothing left: no name');
    });

    test('PKCE S256: the challenge goes to the provider, the verifier to its token endpoint', async () => {
      idp.signInAs(person());
      const asJson = await t.api('GET', '/v1/auth/oauth/oidc/authorize', { headers: { accept: 'application/json' } });
      assert.equal(asJson.status, 200);
      const url = new URL(asJson.body.url);
      assert.equal(url.origin + url.pathname, `${idp.issuer}/authorize`);
      assert.equal(url.searchParams.get('code_challenge_method'), 'S256');
      assert.equal(url.searchParams.get('redirect_uri'), 'http://parley.test/v1/auth/oauth/oidc/callback');
      assert.ok(url.searchParams.get('nonce') && url.searchParams.get('state'));
      assert.match(url.searchParams.get('scope')!, /\bopenid\b/);

      const ok = await signInWith(t, 'oidc');
      assert.equal(ok.status, 200);
      assert.equal(idp.seen.method, 'S256');
      assert.ok(idp.seen.verifier, 'the code_verifier was sent');
      assert.equal(s256(idp.seen.verifier!), idp.seen.challenge);

      // A verifier that does not match the challenge is refused by the provider, so no session.
      const callback = await authorizeAtProvider(t, 'oidc');
      await t.deps.db.update(oauthFlows).set({ codeVerifier: randomPKCECodeVerifier() }).where(eq(oauthFlows.state, stateOf(callback)));
      const refused = await t.api('GET', callback);
      assert.equal(refused.status, 502);
      assert.equal(refused.body.code, 'oauth_provider_failed');
    });

    test('links to an existing password account when both sides verified the email', async () => {
      const u = await createUser(t);
      await t.services.users.markEmailVerified(u.id);
      const who = person({ email: u.email.toUpperCase() });
      idp.signInAs(who);
      const res = await signInWith(t, 'oidc');
      assert.equal(res.status, 200, res.text);
      assert.equal(res.body.user.id, u.id);
      assert.equal(res.body.user.hasPassword, true);
      const audit = await t.services.audit.list({ limit: 5, userId: u.id, action: 'oauth.linked' });
      assert.equal(audit.length, 1);
      assert.equal((audit[0]!.metadata as Record<string, unknown>).provider, 'oidc');
      assert.equal((await linksOf(u.id)).length, 1);
      const login = await t.api('POST', '/v1/auth/login', { body: { email: u.email, password: u.password } });
      assert.equal(login.status, 200, 'the password keeps working');
    });

    test('never links on an email the provider does not verify', async () => {
      const u = await createUser(t);
      await t.services.users.markEmailVerified(u.id);
      for (const claims of [{ email_verified: false }, { email_verified: undefined }, { email_verified: 'false' }]) {
        idp.signInAs(person({ email: u.email, ...claims }));
        const res = await signInWith(t, 'oidc');
        assert.equal(res.status, 409);
        assert.equal(res.body.code, 'email_not_verified_by_provider');
      }
      assert.equal((await linksOf(u.id)).length, 0);
    });

    test('never links into an account whose own email was never verified (pre-registration takeover)', async () => {
      const squatter = await createUser(t);
      idp.signInAs(person({ email: squatter.email }));
      const res = await signInWith(t, 'oidc');
      assert.equal(res.status, 409);
      assert.equal(res.body.code, 'account_email_not_verified');
      assert.equal((await linksOf(squatter.id)).length, 0);
    });

    test('an account an unvouched OAuth sign-in made is the inbox owner\'s once a password reset proves the address: the identity is unlinked', async () => {
      // Someone signs in with a provider that does not vouch for an address that is not theirs: an unverified account.
      const victimEmail = uniqueEmail('victim');
      const intruder = person({ email: victimEmail, email_verified: false });
      idp.signInAs(intruder);
      const made = await signInWith(t, 'oidc');
      assert.equal(made.status, 200, made.text);
      const accountId = made.body.user.id;
      assert.equal((await linksOf(accountId)).length, 1);

      // The address's owner takes the account back through a reset link sent to their inbox.
      assert.equal((await t.api('POST', '/v1/auth/password/forgot', { body: { email: victimEmail } })).status, 202);
      const mail = (await waitForMails(t, victimEmail, /reset/i))[0]!;
      const reset = await t.api('POST', '/v1/auth/password/reset', { body: { token: tokenIn(mail.text, '/reset-password'), password: 'the real owner password' } });
      assert.equal(reset.status, 204, reset.text);
      assert.deepEqual(await linksOf(accountId), [], 'the identity that never proved the address is gone');
      const [entry] = await t.services.audit.list({ limit: 1, userId: accountId, action: 'password.reset' });
      assert.deepEqual((entry!.metadata as Record<string, unknown>).unlinkedProviders, ['oidc']);

      // The intruder's provider identity no longer signs into it.
      idp.signInAs(intruder);
      const again = await signInWith(t, 'oidc');
      assert.equal(again.status, 409, again.text);
      assert.equal(again.body.code, 'email_not_verified_by_provider');
      const owner = await t.api('POST', '/v1/auth/login', { body: { email: victimEmail, password: 'the real owner password' } });
      assert.equal(owner.status, 200);
      assert.equal(owner.body.user.id, accountId);
    });

    test('an email the provider does not verify makes an unverified account; userinfo fills in a missing email', async () => {
      idp.signInAs(person({ email_verified: false }));
      const unverified = await signInWith(t, 'oidc');
      assert.equal(unverified.status, 200);
      assert.equal(unverified.body.user.emailVerified, false);

      const email = uniqueEmail('userinfo');
      const sub = `sub-${randomUUID()}`;
      idp.signInAs({ sub }, { userinfo: { sub, email, email_verified: true, given_name: 'Grace', family_name: 'Hopper' } });
      const fromUserinfo = await signInWith(t, 'oidc');
      assert.equal(fromUserinfo.status, 200, fromUserinfo.text);
      assert.equal(fromUserinfo.body.user.email, email);
      assert.equal(fromUserinfo.body.user.emailVerified, true);
      assert.equal(fromUserinfo.body.user.name, 'Grace Hopper');

      const bare = `sub-${randomUUID()}`;
      idp.signInAs({ sub: bare }, { userinfo: { sub: bare } });
      const none = await signInWith(t, 'oidc');
      assert.equal(none.status, 400);
      assert.equal(none.body.code, 'oauth_email_missing');

      idp.signInAs({ sub: bare }, { userinfo: { sub: 'someone-else', email, email_verified: true } });
      assert.equal((await signInWith(t, 'oidc')).status, 502, 'userinfo about another subject is not believed');
    });

    test('state is single use, must exist, and expires', async () => {
      idp.signInAs(person());
      const callback = await authorizeAtProvider(t, 'oidc');
      assert.equal((await t.api('GET', callback)).status, 200);
      const replay = await t.api('GET', callback);
      assert.equal(replay.status, 400);
      assert.equal(replay.body.code, 'invalid_oauth_state');

      const fresh = await authorizeAtProvider(t, 'oidc');
      for (const bad of [fresh.replace(/state=[^&]+/, 'state=forged'), fresh.replace(/[?&]state=[^&]+/, '')]) {
        const res = await t.api('GET', bad);
        assert.equal(res.status, 400);
        assert.equal(res.body.code, 'invalid_oauth_state');
      }
      await t.deps.db.update(oauthFlows).set({ expiresAt: new Date(Date.now() - 1000) }).where(eq(oauthFlows.state, stateOf(fresh)));
      const expired = await t.api('GET', fresh);
      assert.equal(expired.status, 400);
      assert.equal(expired.body.code, 'invalid_oauth_state');
    });

    test('a provider error is a 400 and spends the flow', async () => {
      const callback = await authorizeAtProvider(t, 'oidc');
      const denied = callback.replace(/code=[^&]+/, 'error=access_denied&error_description=User+said+no');
      const res = await t.api('GET', denied);
      assert.equal(res.status, 400);
      assert.equal(res.body.code, 'oauth_provider_error');
      assert.equal(res.body.providerError, 'access_denied');
      assert.equal((await t.api('GET', callback)).body.code, 'invalid_oauth_state');
    });

    test('provider failures: a rejected code is a 400; errors, bad tokens and a wrong nonce are 502', async () => {
      idp.signInAs(person());
      idp.server.service.once('beforeResponse', (r) => Object.assign(r, { statusCode: 400, body: { error: 'invalid_grant' } }));
      const rejected = await signInWith(t, 'oidc');
      assert.equal(rejected.status, 400);
      assert.equal(rejected.body.code, 'oauth_code_rejected');

      idp.server.service.once('beforeResponse', (r) => Object.assign(r, { statusCode: 500, body: { error: 'server_error' } }));
      assert.equal((await signInWith(t, 'oidc')).status, 502);

      idp.signInAs(person({ nonce: 'not-the-one-we-sent' }));
      const forged = await signInWith(t, 'oidc');
      assert.equal(forged.status, 502);
      assert.equal(forged.body.code, 'oauth_provider_failed');

      idp.signInAs(person({ aud: 'another-client' }));
      assert.equal((await signInWith(t, 'oidc')).status, 502, 'an ID token for another client');
    });

    test('redirectTo: session cookies and a redirect there; other origins are refused', async () => {
      idp.signInAs(person());
      const res = await signInWith(t, 'oidc', { redirectTo: 'http://parley.test/app/welcome?tab=1' });
      assert.equal(res.status, 302);
      assert.equal(res.headers.get('location'), 'http://parley.test/app/welcome?tab=1');
      const cookies = res.headers.getSetCookie();
      const access = cookies.find((c) => c.startsWith('parley_access='))!;
      const refresh = cookies.find((c) => c.startsWith('parley_refresh='))!;
      assert.match(access, /HttpOnly/);
      assert.match(access, /SameSite=Lax/);
      assert.match(refresh, /Path=\/v1\/auth/);
      const me = await t.api('GET', '/v1/users/me', { headers: { cookie: access.split(';')[0]! } });
      assert.equal(me.status, 200);

      // Login CSRF: a callback link from a flow someone else started does not sign this browser in.
      const foreign = await authorizeAtProvider(t, 'oidc', { redirectTo: 'http://parley.test/app' });
      const csrf = await t.api('GET', foreign);
      assert.equal(csrf.status, 400);
      assert.equal(csrf.body.code, 'oauth_browser_mismatch');
      assert.equal(csrf.headers.getSetCookie().filter((c) => c.startsWith('parley_access')).length, 0);

      const evil = ['https://evil.example/', '//evil.example/x', 'javascript:alert(1)', 'http://parley.test.evil.example/', 'http://user@parley.test/', '/relative', 'http://parley.test:8080/'];
      for (const redirectTo of evil) {
        const start = await t.api('GET', `/v1/auth/oauth/oidc/authorize?redirectTo=${encodeURIComponent(redirectTo)}`);
        assert.equal(start.status, 400, redirectTo);
        assert.equal(start.body.code, 'redirect_not_allowed');
      }
    });

    test('a disabled user is refused, whether linked or matched by email', async () => {
      const who = person();
      idp.signInAs(who);
      const first = await signInWith(t, 'oidc');
      await t.services.users.setDisabled(first.body.user.id, true);
      const again = await signInWith(t, 'oidc');
      assert.equal(again.status, 403);
      assert.equal(again.body.code, 'account_disabled');

      const u = await createUser(t);
      await t.services.users.markEmailVerified(u.id);
      await t.services.users.setDisabled(u.id, true);
      idp.signInAs(person({ email: u.email }));
      assert.equal((await signInWith(t, 'oidc')).body.code, 'account_disabled');
      assert.equal((await linksOf(u.id)).length, 0, 'nothing is linked to a disabled account');
    });

    test('bans, as at password sign-in: a banned address makes no account; a banned user, or anyone but an admin there, gets no session', async () => {
      const admin = await createUser(t, { admin: true });
      const ban = async (kind: 'ip' | 'user', subject: string) => {
        const res = await t.api('POST', '/v1/admin/bans', { token: admin.accessToken, body: { kind, subject, seconds: 600, reason: 'testing' } });
        assert.equal(res.status, 201, res.text);
      };
      const from = async (ip: string) => {
        const { callback, cookie } = await startAtProvider(t, 'oidc');
        return t.api('GET', callback, { headers: { cookie, 'x-forwarded-for': ip } });
      };
      const ip = `10.9.${Math.floor(Math.random() * 250)}.${Math.floor(Math.random() * 250)}`;
      await ban('ip', ip);

      const newcomer = person();
      idp.signInAs(newcomer);
      const refused = await from(ip);
      assert.equal(refused.status, 403, refused.text);
      assert.equal(refused.body.code, 'banned');
      assert.equal(await t.services.users.byEmail(newcomer.email), undefined, 'no account was made');

      const known = person();
      idp.signInAs(known);
      const first = await from('10.8.0.1');
      assert.equal(first.status, 200, 'from elsewhere');
      idp.signInAs(known);
      assert.equal((await from(ip)).body.code, 'banned', 'a known user at a banned address');
      await ban('user', first.body.user.id);
      idp.signInAs(known);
      const banned = await from('10.8.0.2');
      assert.equal(banned.status, 403);
      assert.equal(banned.body.code, 'banned');
      assert.ok(Number(banned.headers.get('retry-after')) >= 1);
    });

    test('with two-factor on, the same MFA challenge as password login, and no session', async () => {
      const who = person();
      idp.signInAs(who);
      const first = await signInWith(t, 'oidc');
      const userId = first.body.user.id;
      await t.deps.db.insert(totpFactors).values({ userId, secretEnc: 'unused-here', enabledAt: new Date() });

      const res = await signInWith(t, 'oidc');
      assert.equal(res.status, 200);
      assert.deepEqual(Object.keys(res.body).sort(), ['expiresIn', 'mfaRequired', 'mfaToken']);
      assert.equal(res.body.mfaRequired, true);
      assert.equal((await t.services.auth.userForMfaToken(res.body.mfaToken)).id, userId);

      const browser = await signInWith(t, 'oidc', { redirectTo: 'http://parley.test/app' });
      assert.equal(browser.status, 302);
      const fragment = new URLSearchParams(new URL(browser.headers.get('location')!).hash.slice(1));
      assert.equal(fragment.get('mfaRequired'), 'true');
      assert.ok(fragment.get('mfaToken'));
      const sessionCookies = browser.headers.getSetCookie().filter((c) => /^parley_(access|refresh)=/.test(c));
      assert.equal(sessionCookies.length, 0, 'no session cookies before the second factor');
      const sessions = await t.api('GET', '/v1/auth/sessions', { token: first.body.accessToken });
      assert.equal(sessions.body.data.length, 1);
      await t.deps.db.delete(totpFactors).where(eq(totpFactors.userId, userId));
    });
  });
}

test('Entra ID: only xms_edov vouches for an email; elsewhere email_verified does', () => {
  assert.equal(emailVerifiedBy({ email_verified: true }, true), false);
  assert.equal(emailVerifiedBy({ xms_edov: true }, true), true);
  assert.equal(emailVerifiedBy({ xms_edov: '1' }, true), true);
  assert.equal(emailVerifiedBy({ email_verified: true }, false), true);
  assert.equal(emailVerifiedBy({ email_verified: 'true' }, false), true);
  assert.equal(emailVerifiedBy({ xms_edov: true }, false), false);
});
