import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { and, eq } from 'drizzle-orm';
import { auditLog } from '../../../src/modules/audit/schema.ts';
import { backupCodes, knownDevices, oneTimeTokens, totpFactors } from '../../../src/modules/auth/schema.ts';
import { totp } from '../../../src/modules/auth/totp.ts';
import { backends, startApp, type TestApp } from '../../support/app.ts';
import { createUser, uniqueEmail } from '../../support/factories.ts';
import { mailsTo, tokenIn, waitForMails } from '../../support/mail.ts';

const VERIFY = /confirm your email/i;
const RESET = /reset your password/i;

for (const backend of backends()) {
  describe(`email verification and password reset [${backend}]`, () => {
    let t: TestApp;
    before(async () => {
      t = await startApp({ backend });
    });
    after(() => t.close());

    const actions = async (userId: string, action: string) =>
      t.deps.db.select().from(auditLog).where(and(eq(auditLog.userId, userId), eq(auditLog.action, action)));
    /** Pretends the user's tokens were issued (and so last mailed) two minutes ago. */
    const backdate = (userId: string) =>
      t.deps.db.update(oneTimeTokens).set({ createdAt: new Date(Date.now() - 120_000) }).where(eq(oneTimeTokens.userId, userId));
    const expire = (userId: string) =>
      t.deps.db.update(oneTimeTokens).set({ expiresAt: new Date(Date.now() - 1000) }).where(eq(oneTimeTokens.userId, userId));
    async function waitFor(condition: () => Promise<boolean>) {
      const deadline = Date.now() + 10_000;
      while (!(await condition())) {
        if (Date.now() > deadline) throw new Error('timed out');
        await new Promise((r) => setTimeout(r, 20));
      }
    }
    const me = async (token: string) => (await t.api('GET', '/v1/users/me', { token })).body;
    const forgot = (email: string) => t.api('POST', '/v1/auth/password/forgot', { body: { email } });
    async function resetToken(email: string, count = 1) {
      const mails = await waitForMails(t, email, RESET, count);
      return tokenIn(mails[count - 1]!.text, '/reset-password');
    }

    test('sign-up sends a verification link; the token verifies the address once', async () => {
      const u = await createUser(t, { name: 'Vera' });
      const [mail] = await waitForMails(t, u.email, VERIFY);
      assert.match(mail!.text, /^Hi Vera,/);
      assert.match(mail!.text, /http:\/\/parley\.test\/verify-email\?token=/, 'the link uses the public URL');
      assert.match(mail!.text, /expires in 24 hours/);
      assert.match(mail!.html!, /<a href="http:\/\/parley\.test\/verify-email\?token=/);
      const token = tokenIn(mail!.text, '/verify-email');
      const [row] = await t.deps.db.select().from(oneTimeTokens).where(eq(oneTimeTokens.userId, u.id));
      assert.notEqual(row!.tokenHash, token, 'only a hash is stored');
      assert.equal(row!.purpose, 'email_verification');

      assert.equal((await me(u.accessToken)).emailVerified, false);
      const ok = await t.api('POST', '/v1/auth/verify-email', { body: { token } });
      assert.equal(ok.status, 204);
      assert.equal((await me(u.accessToken)).emailVerified, true);
      assert.equal((await actions(u.id, 'user.email_verified')).length, 1);

      const replay = await t.api('POST', '/v1/auth/verify-email', { body: { token } });
      assert.equal(replay.status, 400);
      assert.match(replay.headers.get('content-type')!, /application\/problem\+json/);
      assert.equal(replay.body.code, 'invalid_token');
    });

    test('a name with line breaks, control characters or direction overrides is refused at sign-up, and nothing is emailed to the address; an ordinary one greets as given', async () => {
      const paragraph = 'there\n\nSECURITY ALERT: your account was locked. Unlock it at https://evil.test/unlock.\n\nParley Security Team\n\n';
      for (const name of [paragraph, 'a\rb', 'tab\there', 'next\u0085line', 'line\u2028sep', 'para\u2029sep', 'del\u007f', 'Invoice \u202Efdp.exe', 'iso\u2066late\u2069', 'emb\u202Aed\u202C']) {
        const email = uniqueEmail('stranger');
        const res = await t.api('POST', '/v1/auth/register', { body: { email, password: 'correct horse battery staple', name } });
        assert.equal(res.status, 400, JSON.stringify(name));
        assert.equal(res.body.code, 'validation_failed');
        assert.deepEqual(res.body.errors.map((e: { path: string }) => e.path), ['/name'], JSON.stringify(res.body.errors));
        assert.deepEqual(await mailsTo(t, email), []);
      }
      const email = uniqueEmail();
      const name = 'José Müller-Łukasz 李小龍 👩‍💻';
      const res = await t.api('POST', '/v1/auth/register', { body: { email, password: 'correct horse battery staple', name } });
      assert.equal(res.status, 201, res.text);
      assert.equal(res.body.user.name, name);
      const [mail] = await waitForMails(t, email, VERIFY);
      assert.ok(mail!.text.startsWith(`Hi ${name},\n\nConfirm your email address`), mail!.text.slice(0, 80));
    });

    test('an expired or unknown verification token is refused', async () => {
      const u = await createUser(t);
      const token = tokenIn((await waitForMails(t, u.email, VERIFY))[0]!.text, '/verify-email');
      await expire(u.id);
      const res = await t.api('POST', '/v1/auth/verify-email', { body: { token } });
      assert.equal(res.status, 400);
      assert.equal(res.body.code, 'invalid_token');
      assert.equal((await me(u.accessToken)).emailVerified, false);
      assert.equal((await t.api('POST', '/v1/auth/verify-email', { body: { token: 'not-a-token' } })).body.code, 'invalid_token');
    });

    test('resend: signed in only, rate limited, voids the old link, a no-op once verified', async () => {
      const u = await createUser(t);
      const first = tokenIn((await waitForMails(t, u.email, VERIFY))[0]!.text, '/verify-email');
      assert.equal((await t.api('POST', '/v1/auth/verify-email/resend')).status, 401);

      const tooSoon = await t.api('POST', '/v1/auth/verify-email/resend', { token: u.accessToken });
      assert.equal(tooSoon.status, 429);
      assert.equal(tooSoon.body.code, 'email_rate_limited');
      assert.ok(Number(tooSoon.headers.get('retry-after')) > 0);

      await backdate(u.id);
      assert.equal((await t.api('POST', '/v1/auth/verify-email/resend', { token: u.accessToken })).status, 204);
      const mails = await waitForMails(t, u.email, VERIFY, 2);
      const second = tokenIn(mails[1]!.text, '/verify-email');
      assert.equal((await t.api('POST', '/v1/auth/verify-email', { body: { token: first } })).body.code, 'invalid_token', 'the older link stopped working');
      assert.equal((await t.api('POST', '/v1/auth/verify-email', { body: { token: second } })).status, 204);

      await backdate(u.id);
      assert.equal((await t.api('POST', '/v1/auth/verify-email/resend', { token: u.accessToken })).status, 204);
      assert.equal((await mailsTo(t, u.email)).length, 2, 'no mail once verified');
    });

    test('password reset: sets the password, ends every session, works once', async () => {
      const u = await createUser(t);
      const phone = await t.api('POST', '/v1/auth/login', { body: { email: u.email, password: u.password } });
      assert.equal((await forgot(u.email.toUpperCase())).status, 202);
      const token = await resetToken(u.email);
      const mail = (await waitForMails(t, u.email, RESET))[0]!;
      assert.match(mail.text, /expires in 1 hour/);
      assert.match(mail.html!, /http:\/\/parley\.test\/reset-password\?token=/);

      const weak = await t.api('POST', '/v1/auth/password/reset', { body: { token, password: 'short' } });
      assert.equal(weak.status, 400);
      assert.equal(weak.body.code, 'weak_password', 'password rules apply, and the token survives them');

      const ok = await t.api('POST', '/v1/auth/password/reset', { body: { token, password: 'a brand new password' } });
      assert.equal(ok.status, 204);
      for (const session of [u, phone.body]) {
        const r = await t.api('GET', '/v1/users/me', { token: session.accessToken });
        assert.equal(r.status, 401);
        assert.equal(r.body.code, 'session_revoked');
        assert.equal((await t.api('POST', '/v1/auth/refresh', { body: { refreshToken: session.refreshToken } })).status, 401);
      }
      assert.equal((await t.api('POST', '/v1/auth/login', { body: { email: u.email, password: u.password } })).status, 401);
      const login = await t.api('POST', '/v1/auth/login', { body: { email: u.email, password: 'a brand new password' } });
      assert.equal(login.status, 200);
      assert.equal(login.body.user.emailVerified, true, 'the reset link proved the address too');
      const [audit] = await actions(u.id, 'password.reset');
      assert.equal(audit!.metadata.sessionsRevoked, 2);
      assert.equal((await actions(u.id, 'password.reset_requested')).length, 1);
      await waitForMails(t, u.email, /password was changed/);

      const replay = await t.api('POST', '/v1/auth/password/reset', { body: { token, password: 'yet another password' } });
      assert.equal(replay.status, 400);
      assert.equal(replay.body.code, 'invalid_token');
    });

    test('forgot-password answers an unknown address exactly as a known one', async () => {
      const u = await createUser(t);
      const ghost = uniqueEmail('ghost');
      const unknown = await forgot(ghost);
      const known = await forgot(u.email);
      for (const r of [unknown, known]) assert.equal(r.status, 202);
      assert.equal(unknown.text, known.text);
      assert.match(known.body.message, /If an account uses this address/);
      assert.equal(unknown.headers.get('content-type'), known.headers.get('content-type'));
      await resetToken(u.email);
      assert.equal((await mailsTo(t, ghost)).length, 0);
    });

    test('a new reset link voids the older one; an expired one is refused', async () => {
      const u = await createUser(t);
      await forgot(u.email);
      const older = await resetToken(u.email);
      await forgot(u.email);
      await waitFor(async () => (await actions(u.id, 'password.reset_requested')).length === 2);
      assert.equal((await actions(u.id, 'password.reset_requested'))[1]!.metadata.emailed, false, 'a request moments after another sends nothing');
      await backdate(u.id);
      await forgot(u.email);
      const newer = await resetToken(u.email, 2);
      const stale = await t.api('POST', '/v1/auth/password/reset', { body: { token: older, password: 'password number one' } });
      assert.equal(stale.status, 400);
      assert.equal(stale.body.code, 'invalid_token');
      await expire(u.id);
      const expired = await t.api('POST', '/v1/auth/password/reset', { body: { token: newer, password: 'password number two' } });
      assert.equal(expired.status, 400);
      assert.equal(expired.body.code, 'invalid_token');
      assert.equal((await t.api('POST', '/v1/auth/login', { body: { email: u.email, password: u.password } })).status, 200);
    });

    test('two concurrent resets with one token: exactly one succeeds', async () => {
      const u = await createUser(t);
      await forgot(u.email);
      const token = await resetToken(u.email);
      const results = await Promise.all(
        ['concurrent password a', 'concurrent password b'].map((password) => t.api('POST', '/v1/auth/password/reset', { body: { token, password } })),
      );
      assert.deepEqual(results.map((r) => r.status).sort(), [204, 400]);
      assert.equal((await actions(u.id, 'password.reset')).length, 1);
    });

    test('a reset that first proves the address deletes the API keys made before it; a verified account keeps its keys', async () => {
      const useKey = (key: string) => t.api('GET', '/v1/users/me', { token: key });
      const makeKey = async (token: string) => (await t.api('POST', '/v1/api-keys', { token, body: { name: 'made before the reset' } })).body;

      // Someone signs up with another person's address, never proves it, and keeps a key (verified once, so cached).
      const squatter = await createUser(t);
      const planted = await makeKey(squatter.accessToken);
      assert.equal((await useKey(planted.key)).status, 200);
      // The inbox's owner takes the account back through a reset link.
      await forgot(squatter.email);
      const reset = await t.api('POST', '/v1/auth/password/reset', { body: { token: await resetToken(squatter.email), password: 'the real owner now' } });
      assert.equal(reset.status, 204);
      const refused = await useKey(planted.key);
      assert.equal(refused.status, 401);
      assert.equal(refused.body.code, 'invalid_api_key');
      const owner = await t.api('POST', '/v1/auth/login', { body: { email: squatter.email, password: 'the real owner now' } });
      assert.deepEqual((await t.api('GET', '/v1/api-keys', { token: owner.body.accessToken })).body.data, []);
      const [audit] = await actions(squatter.id, 'password.reset');
      assert.deepEqual(audit!.metadata.apiKeysDeleted, [planted.id]);

      // An owner who had proved the address resets a forgotten password and keeps the keys they made.
      const verified = await createUser(t);
      await t.api('POST', '/v1/auth/verify-email', { body: { token: tokenIn((await waitForMails(t, verified.email, VERIFY))[0]!.text, '/verify-email') } });
      const kept = await makeKey(verified.accessToken);
      await forgot(verified.email);
      assert.equal((await t.api('POST', '/v1/auth/password/reset', { body: { token: await resetToken(verified.email), password: 'forgot it again' } })).status, 204);
      assert.equal((await useKey(kept.key)).status, 200);
    });

    test('a reset that first proves the address removes the second factors and devices enrolled before it; a verified account keeps them', async () => {
      /** Turns two-factor on for the holder of this session; returns a code for a later step. */
      async function enableMfa({ accessToken, password }: { accessToken: string; password: string }) {
        const { secret } = (await t.api('POST', '/v1/auth/mfa/totp/enroll', { token: accessToken })).body;
        const now = Math.floor(Date.now() / 1000);
        const res = await t.api('POST', '/v1/auth/mfa/totp/activate', { token: accessToken, body: { code: await totp.codeAt(secret, now), password } });
        assert.equal(res.status, 200, res.text);
        return { later: await totp.codeAt(secret, now + 30) };
      }
      const rows = async (userId: string) => ({
        totp: (await t.deps.db.select().from(totpFactors).where(eq(totpFactors.userId, userId))).length,
        backupCodes: (await t.deps.db.select().from(backupCodes).where(eq(backupCodes.userId, userId))).length,
      });
      const resetTo = async (email: string, password: string) => {
        await forgot(email);
        const res = await t.api('POST', '/v1/auth/password/reset', { body: { token: await resetToken(email), password } });
        assert.equal(res.status, 204, res.text);
      };

      // Someone signs up with another person's address, never proves it, and turns two-factor on with their own phone.
      const squatter = await createUser(t);
      await enableMfa(squatter);
      const squatterDevice = { 'user-agent': 'SquatterPhone/1.0' };
      assert.equal((await t.api('POST', '/v1/auth/login', { body: { email: squatter.email, password: squatter.password }, headers: squatterDevice })).body.mfaRequired, true);
      assert.ok((await t.deps.db.select().from(knownDevices).where(eq(knownDevices.userId, squatter.id))).length > 0);
      // The inbox's owner takes the account back through a reset link, and signs in with the password alone.
      await resetTo(squatter.email, 'the real owner now');
      const owner = await t.api('POST', '/v1/auth/login', { body: { email: squatter.email, password: 'the real owner now' } });
      assert.equal(owner.status, 200, owner.text);
      assert.equal(owner.body.mfaRequired, undefined, 'no second factor left to ask for');
      assert.ok(owner.body.accessToken);
      assert.deepEqual((await t.api('GET', '/v1/auth/mfa', { token: owner.body.accessToken })).body, { totpEnabled: false, backupCodesRemaining: 0 });
      assert.deepEqual(await rows(squatter.id), { totp: 0, backupCodes: 0 });
      const [audit] = await actions(squatter.id, 'password.reset');
      assert.deepEqual(audit!.metadata.mfaFactorsRemoved, ['totp', 'backup_codes']);
      assert.ok(Number(audit!.metadata.knownDevicesForgotten) >= 1);
      const devices = await t.deps.db.select().from(knownDevices).where(eq(knownDevices.userId, squatter.id));
      assert.ok(!devices.some((row) => row.description.startsWith('SquatterPhone')), "the squatter's device is forgotten");

      // An owner who had proved the address resets a forgotten password: two-factor stays on.
      const verified = await createUser(t);
      await t.api('POST', '/v1/auth/verify-email', { body: { token: tokenIn((await waitForMails(t, verified.email, VERIFY))[0]!.text, '/verify-email') } });
      const { later } = await enableMfa(verified);
      await resetTo(verified.email, 'forgot it again');
      const challenged = await t.api('POST', '/v1/auth/login', { body: { email: verified.email, password: 'forgot it again' } });
      assert.equal(challenged.body.mfaRequired, true);
      assert.deepEqual(await rows(verified.id), { totp: 1, backupCodes: 10 });
      assert.equal((await t.api('POST', '/v1/auth/mfa/verify', { body: { mfaToken: challenged.body.mfaToken, code: later } })).status, 200);
      assert.equal((await actions(verified.id, 'password.reset'))[0]!.metadata.mfaFactorsRemoved, undefined);
    });

    test('password change: needs the current password, keeps this session, ends the others', async () => {
      const u = await createUser(t);
      const other = await t.api('POST', '/v1/auth/login', { body: { email: u.email, password: u.password } });
      const change = (body: object, token = u.accessToken) => t.api('POST', '/v1/auth/password/change', { body, token });

      assert.equal((await t.api('POST', '/v1/auth/password/change', { body: { currentPassword: u.password, newPassword: 'x'.repeat(12) } })).status, 401);
      const wrong = await change({ currentPassword: 'not my password', newPassword: 'a changed password' });
      assert.equal(wrong.status, 403);
      assert.equal(wrong.body.code, 'invalid_password');
      assert.equal((await change({ currentPassword: u.password, newPassword: 'short' })).body.code, 'weak_password');
      const { secret } = await t.services.apiKeys.create(u.id, { name: 'script' });
      assert.equal((await change({ currentPassword: u.password, newPassword: 'a changed password' }, secret)).status, 403, 'API keys cannot');

      const ok = await change({ currentPassword: u.password, newPassword: 'a changed password' });
      assert.equal(ok.status, 204);
      assert.equal((await t.api('GET', '/v1/users/me', { token: u.accessToken })).status, 200, 'this session stays');
      assert.equal((await t.api('GET', '/v1/users/me', { token: other.body.accessToken })).body.code, 'session_revoked');
      assert.equal((await t.api('POST', '/v1/auth/login', { body: { email: u.email, password: 'a changed password' } })).status, 200);
      assert.equal((await actions(u.id, 'password.changed')).length, 1);
      await waitForMails(t, u.email, /password was changed/);
    });
  });

  describe(`password reset rate limit [${backend}]`, () => {
    let t: TestApp;
    before(async () => {
      t = await startApp({ backend, env: { AUTH_RATE_LIMIT_PER_IP: '3' } });
    });
    after(() => t.close());

    test('forgot-password is limited per IP', async () => {
      const statuses = [];
      for (let i = 0; i < 4; i++) statuses.push((await t.api('POST', '/v1/auth/password/forgot', { body: { email: uniqueEmail() } })).status);
      assert.deepEqual(statuses, [202, 202, 202, 429]);
    });
  });
}
