import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { and, eq, isNull, sql } from 'drizzle-orm';
import { auditLog } from '../../../src/modules/audit/schema.ts';
import { MFA_AUDIENCE } from '../../../src/modules/auth/mfa-challenges.ts';
import { backupCodes, sessions, totpFactors } from '../../../src/modules/auth/schema.ts';
import { totp } from '../../../src/modules/auth/totp.ts';
import { inTransaction } from '../../../src/platform/db/database.ts';
import { backends, startApp, type TestApp } from '../../support/app.ts';
import { eventually } from '../../support/eventually.ts';
import { createUser, uniqueEmail, type TestUser } from '../../support/factories.ts';

const STEP = 30;

/**
 * Codes for a fixed step and the one after it. The server accepts one step
 * either side, so both stay valid even if a step boundary passes mid-test.
 */
function authenticator(secret: string) {
  const base = Math.floor(Date.now() / 1000 / STEP);
  const at = (offset: number) => totp.codeAt(secret, (base + offset) * STEP);
  return {
    now: () => at(0),
    next: () => at(1),
    /** A well-formed code that matches no step the server could accept. */
    async wrong() {
      const valid = new Set(await Promise.all([-2, -1, 0, 1, 2].map(at)));
      let n = 0;
      while (valid.has(String(n).padStart(6, '0'))) n++;
      return String(n).padStart(6, '0');
    },
  };
}

for (const backend of backends()) {
  describe(`two-factor authentication [${backend}]`, () => {
    let t: TestApp;
    before(async () => {
      t = await startApp({ backend });
    });
    after(() => t.close());

    const post = (path: string, token: string, body?: object) => t.api('POST', `/v1/auth/mfa${path}`, { token, body });
    const status = async (u: TestUser) => (await t.api('GET', '/v1/auth/mfa', { token: u.accessToken })).body;
    const login = (u: TestUser) => t.api('POST', '/v1/auth/login', { body: { email: u.email, password: u.password } });
    const verify = (body: object) => t.api('POST', '/v1/auth/mfa/verify', { body });
    const audits = (userId: string, action: string) =>
      t.deps.db.select().from(auditLog).where(and(eq(auditLog.userId, userId), eq(auditLog.action, action)));

    /** Enrols and activates with the current code; the next code is still unused. */
    async function enable(u: TestUser) {
      const { secret } = (await post('/totp/enroll', u.accessToken)).body;
      const app = authenticator(secret);
      const res = await post('/totp/activate', u.accessToken, { code: await app.now(), password: u.password });
      assert.equal(res.status, 200, res.text);
      return { secret, app, backupCodes: res.body.backupCodes as string[] };
    }

    test('enrol, re-enrol, activate: backup codes once, secret stored encrypted', async () => {
      const u = await createUser(t);
      assert.deepEqual(await status(u), { totpEnabled: false, backupCodesRemaining: 0 });
      const first = await post('/totp/enroll', u.accessToken);
      assert.equal(first.status, 200);
      assert.match(first.body.secret, /^[A-Z2-7]{32}$/);
      const url = new URL(first.body.otpauthUrl);
      assert.equal(url.protocol, 'otpauth:');
      assert.equal(url.searchParams.get('secret'), first.body.secret);
      assert.equal(url.searchParams.get('issuer'), 'parley.test');
      assert.ok(decodeURIComponent(url.pathname).includes(u.email));

      const second = await post('/totp/enroll', u.accessToken);
      assert.notEqual(second.body.secret, first.body.secret);
      const [row] = await t.deps.db.select().from(totpFactors).where(eq(totpFactors.userId, u.id));
      assert.ok(!row!.secretEnc.includes(second.body.secret), 'not stored in the clear');
      assert.equal(row!.enabledAt, null);
      assert.equal((await login(u)).body.mfaRequired, undefined, 'not required before activation');

      const stale = await post('/totp/activate', u.accessToken, { code: await authenticator(first.body.secret).now(), password: u.password });
      assert.equal(stale.status, 400, 're-enrolling replaced the first secret');
      assert.equal(stale.body.code, 'invalid_mfa_code');
      const app = authenticator(second.body.secret);
      const wrong = await post('/totp/activate', u.accessToken, { code: await app.wrong(), password: u.password });
      assert.equal(wrong.body.code, 'invalid_mfa_code');

      const ok = await post('/totp/activate', u.accessToken, { code: await app.now(), password: u.password });
      assert.equal(ok.status, 200);
      assert.equal(ok.body.backupCodes.length, 10);
      assert.equal(new Set(ok.body.backupCodes).size, 10);
      const stored = await t.deps.db.select().from(backupCodes).where(eq(backupCodes.userId, u.id));
      assert.equal(stored.length, 10);
      for (const c of ok.body.backupCodes) assert.ok(!stored.some((s) => s.codeHash.includes(c.replace(/-/g, ''))), 'only hashes are stored');
      assert.deepEqual(await status(u), { totpEnabled: true, backupCodesRemaining: 10 });
      assert.equal((await audits(u.id, 'mfa.enabled')).length, 1);
      assert.equal((await audits(u.id, 'mfa.failed')).length, 2);

      const again = await post('/totp/enroll', u.accessToken);
      assert.equal(again.status, 409);
      assert.equal(again.body.code, 'mfa_already_enabled');
      assert.equal((await post('/totp/activate', u.accessToken, { code: await app.next(), password: u.password })).status, 409);
    });

    test('turning two-factor on takes the password: a session alone cannot put its holder\'s authenticator on the account', async () => {
      const u = await createUser(t);
      const { secret } = (await post('/totp/enroll', u.accessToken)).body;
      const app = authenticator(secret);
      const missing = await post('/totp/activate', u.accessToken, { code: await app.now() });
      assert.equal(missing.status, 403, missing.text);
      assert.match(missing.headers.get('content-type')!, /application\/problem\+json/);
      assert.equal(missing.body.code, 'reauthentication_required');
      const wrong = await post('/totp/activate', u.accessToken, { code: await app.now(), password: 'not my password' });
      assert.equal(wrong.status, 403);
      assert.equal(wrong.body.code, 'invalid_password');
      assert.deepEqual(await status(u), { totpEnabled: false, backupCodesRemaining: 0 });
      assert.equal((await login(u)).body.mfaRequired, undefined, 'still signs in with the password alone');
      assert.equal((await audits(u.id, 'mfa.enabled')).length, 0);
      // The code the refusals came with is still good: nothing was tried with it.
      assert.equal((await post('/totp/activate', u.accessToken, { code: await app.now(), password: u.password })).status, 200);
      assert.deepEqual(await status(u), { totpEnabled: true, backupCodesRemaining: 10 });
    });

    test('an account without a password turns two-factor on from a session opened in the last 10 minutes', async () => {
      const passwordless = async () => t.services.auth.signIn(await t.services.users.create({ email: uniqueEmail('oauth'), passwordHash: null, emailVerified: true }), 'oauth:test', {});
      const stale = await passwordless();
      await t.deps.db.update(sessions).set({ createdAt: new Date(Date.now() - 11 * 60_000) }).where(eq(sessions.id, stale.sessionId));
      const old = authenticator((await post('/totp/enroll', stale.accessToken)).body.secret);
      const refused = await post('/totp/activate', stale.accessToken, { code: await old.now() });
      assert.equal(refused.status, 403);
      assert.equal(refused.body.code, 'reauthentication_required');

      const fresh = await passwordless();
      const app = authenticator((await post('/totp/enroll', fresh.accessToken)).body.secret);
      const ok = await post('/totp/activate', fresh.accessToken, { code: await app.now() });
      assert.equal(ok.status, 200, ok.text);
      assert.equal(ok.body.backupCodes.length, 10);
    });

    test('sign-in needs the second factor once enabled; a TOTP code works once', async () => {
      const u = await createUser(t);
      const { app } = await enable(u);
      const first = await login(u);
      assert.equal(first.status, 200);
      assert.equal(first.body.mfaRequired, true);
      assert.equal(first.body.accessToken, undefined);

      const wrong = await verify({ mfaToken: first.body.mfaToken, code: await app.wrong() });
      assert.equal(wrong.status, 400);
      assert.equal(wrong.body.code, 'invalid_mfa_code');
      const [failed] = await audits(u.id, 'mfa.failed');
      assert.equal(failed!.metadata.stage, 'sign_in');

      const replayOfActivation = await verify({ mfaToken: first.body.mfaToken, code: await app.now() });
      assert.equal(replayOfActivation.body.code, 'invalid_mfa_code', 'the code used to activate is spent');

      const code = await app.next();
      const ok = await verify({ mfaToken: first.body.mfaToken, code: `${code.slice(0, 3)} ${code.slice(3)}` });
      assert.equal(ok.status, 200, ok.text);
      assert.ok(ok.body.accessToken && ok.body.refreshToken);
      const sessions = await t.api('GET', '/v1/auth/sessions', { token: ok.body.accessToken });
      assert.equal(sessions.body.data.find((s: { current: boolean }) => s.current).method, 'password+totp');

      const second = await login(u);
      const replay = await verify({ mfaToken: second.body.mfaToken, code });
      assert.equal(replay.status, 400);
      assert.equal(replay.body.code, 'invalid_mfa_code');
    });

    test('a challenge passed with a password that has since changed opens no session', async () => {
      const u = await createUser(t);
      const { app, backupCodes: codes } = await enable(u);
      const challenge = (await login(u)).body.mfaToken;
      assert.ok(challenge);
      // The owner, signed in elsewhere, changes the password; the challenge was passed with the old one.
      const changed = await t.api('POST', '/v1/auth/password/change', { token: u.accessToken, body: { currentPassword: u.password, newPassword: 'a brand new password' } });
      assert.equal(changed.status, 204, changed.text);
      const late = await verify({ mfaToken: challenge, code: await app.next() });
      assert.equal(late.status, 401, late.text);
      assert.equal(late.body.code, 'invalid_mfa_token');
      const fresh = await t.api('POST', '/v1/auth/login', { body: { email: u.email, password: 'a brand new password' } });
      assert.equal((await verify({ mfaToken: fresh.body.mfaToken, backupCode: codes[0] })).status, 200, 'a challenge after the change works');
    });

    const liveSessions = async (userId: string) => (await t.deps.db.select().from(sessions).where(and(eq(sessions.userId, userId), isNull(sessions.revokedAt)))).length;

    test('an account disabled, banned or deleted after the password step gets no session at the code step: the answer the password step gives it now', async () => {
      const admin = await createUser(t, { admin: true });
      const asAdmin = (path: string, body?: object) => t.api('POST', path, { token: admin.accessToken, body });

      const disabled = await createUser(t);
      const first = await enable(disabled);
      const challenge = (await login(disabled)).body.mfaToken;
      assert.equal((await asAdmin(`/v1/admin/users/${disabled.id}/disable`)).status, 200);
      const refused = await verify({ mfaToken: challenge, backupCode: first.backupCodes[0] });
      assert.deepEqual([refused.status, refused.body.code], [403, 'account_disabled'], refused.text);
      assert.deepEqual([(await login(disabled)).status, (await login(disabled)).body.code], [403, 'account_disabled'], 'as the password step says');
      assert.equal(await liveSessions(disabled.id), 0);
      assert.equal((await t.services.mfa.status(disabled.id)).backupCodesRemaining, 10, 'the refused step used no code');
      assert.equal((await asAdmin(`/v1/admin/users/${disabled.id}/enable`)).status, 200);
      assert.equal((await verify({ mfaToken: (await login(disabled)).body.mfaToken, backupCode: first.backupCodes[1] })).status, 200, 'enabled again, signing in works');

      const banned = await createUser(t);
      const second = await enable(banned);
      const before = await liveSessions(banned.id);
      const bannedChallenge = (await login(banned)).body.mfaToken;
      const ban = await asAdmin('/v1/admin/bans', { kind: 'user', subject: banned.id, seconds: 600, reason: 'testing' });
      assert.equal(ban.status, 201, ban.text);
      const refusedBan = await verify({ mfaToken: bannedChallenge, code: await second.app.next() });
      assert.deepEqual([refusedBan.status, refusedBan.body.code], [403, 'banned'], refusedBan.text);
      assert.equal((await login(banned)).body.code, 'banned', 'as the password step says');
      assert.equal(await liveSessions(banned.id), before, 'no session was opened');

      const deleted = await createUser(t);
      const third = await enable(deleted);
      const deletedChallenge = (await login(deleted)).body.mfaToken;
      assert.equal((await t.api('DELETE', '/v1/users/me', { token: deleted.accessToken, body: { password: deleted.password } })).status, 204);
      const gone = await verify({ mfaToken: deletedChallenge, backupCode: third.backupCodes[0] });
      assert.deepEqual([gone.status, gone.body.code], [401, 'invalid_mfa_token'], gone.text);
      assert.equal((await login(deleted)).status, 401, 'the password step no longer knows the account either');
    });

    test('an account disabled while its code step runs: disabled first, the step is refused; the step first, the disabling revokes the session it opened', async () => {
      const u = await createUser(t);
      const { app, backupCodes: codes } = await enable(u);
      // The code step first, then the administrator: the session it opened ends with the others.
      const admin = await createUser(t, { admin: true });
      const signedIn = await verify({ mfaToken: (await login(u)).body.mfaToken, code: await app.next() });
      assert.equal(signedIn.status, 200, signedIn.text);
      assert.equal((await t.api('POST', `/v1/admin/users/${u.id}/disable`, { token: admin.accessToken })).status, 200);
      const refresh = await t.api('POST', '/v1/auth/refresh', { body: { refreshToken: signedIn.body.refreshToken } });
      assert.equal(refresh.status, 401, refresh.text);
      assert.equal(await liveSessions(u.id), 0);
      assert.equal((await t.api('POST', `/v1/admin/users/${u.id}/enable`, { token: admin.accessToken })).status, 200);

      // The administrator first: the account is disabled after the code step read it, while the step runs.
      const mfaToken = (await login(u)).body.mfaToken;
      let res;
      if (t.backend === 'postgres') {
        // An administrator's disabling (admin.disable's transaction) holds the account's row until it commits; the code
        // step, which read the account as enabled, waits on that row before it can open anything.
        let commit!: () => void;
        const held = new Promise<void>((resolve) => (commit = resolve));
        const disabling = inTransaction(t.deps.db, async (tx) => {
          await t.services.users.repo.lockById(u.id, tx);
          await t.services.users.setDisabled(u.id, true, tx);
          await t.services.sessions.revokeAll(u.id, 'disabled_by_admin', undefined, tx);
          await held;
        });
        const pending = verify({ mfaToken, backupCode: codes[0] });
        await eventually(async () => {
          const waiting = await t.deps.db.execute(sql`select count(*)::int as n from pg_stat_activity where datname = current_database() and wait_event_type = 'Lock'`);
          assert.ok((waiting as unknown as { rows: Array<{ n: number }> }).rows[0]!.n > 0, 'the code step waits for the disabling');
        });
        commit();
        await disabling;
        res = await pending;
      } else {
        // One connection: a transaction runs alone, so the disabling is wholly before the code step (or after it, as above).
        assert.equal((await t.api('POST', `/v1/admin/users/${u.id}/disable`, { token: admin.accessToken })).status, 200);
        res = await verify({ mfaToken, backupCode: codes[0] });
      }
      assert.deepEqual([res.status, res.body.code], [403, 'account_disabled'], res.text);
      assert.equal(await liveSessions(u.id), 0, 'no session was opened');
      assert.equal((await t.services.mfa.status(u.id)).backupCodesRemaining, 10, 'the refused step used no code');
    });

    test('the same code sent twice at once signs in only once', async () => {
      const u = await createUser(t);
      const { app } = await enable(u);
      const [a, b] = await Promise.all([login(u), login(u)]);
      const code = await app.next();
      const results = await Promise.all([a, b].map((l) => verify({ mfaToken: l.body.mfaToken, code })));
      assert.deepEqual(results.map((r) => r.status).sort(), [200, 400]);
    });

    test('a backup code signs in once, typed any way', async () => {
      const u = await createUser(t);
      const { backupCodes: codes } = await enable(u);
      const typed = ` ${codes[0]!.toUpperCase().replace(/-/g, '')} `;
      const ok = await verify({ mfaToken: (await login(u)).body.mfaToken, backupCode: typed });
      assert.equal(ok.status, 200, ok.text);
      const sessions = await t.api('GET', '/v1/auth/sessions', { token: ok.body.accessToken });
      assert.equal(sessions.body.data.find((s: { current: boolean }) => s.current).method, 'password+backup_code');
      assert.equal((await status(u)).backupCodesRemaining, 9);

      const again = await verify({ mfaToken: (await login(u)).body.mfaToken, backupCode: codes[0] });
      assert.equal(again.status, 400);
      assert.equal(again.body.code, 'invalid_mfa_code');
      const both = await verify({ mfaToken: (await login(u)).body.mfaToken, backupCode: codes[1], code: '123456' });
      assert.equal(both.status, 400);
      assert.equal(both.body.code, 'validation_failed');
    });

    test('expired, tampered and wrong-audience MFA tokens are refused', async () => {
      const u = await createUser(t);
      const { app } = await enable(u);
      const code = await app.next();
      const expired = await t.services.keys.sign({ purpose: 'mfa' }, { subject: u.id, audience: MFA_AUDIENCE, issuer: 'http://parley.test', ttlSeconds: -10 });
      const { mfaToken } = (await login(u)).body;
      const [h, p, s] = mfaToken.split('.');
      const other = await createUser(t);
      const claims = JSON.parse(Buffer.from(p!, 'base64url').toString());
      const tampered = [h, Buffer.from(JSON.stringify({ ...claims, sub: other.id })).toString('base64url'), s].join('.');
      for (const bad of [expired, tampered, u.accessToken, 'not.a.jwt']) {
        const r = await verify({ mfaToken: bad, code });
        assert.equal(r.status, 401);
        assert.equal(r.body.code, 'invalid_mfa_token');
      }
      assert.equal((await verify({ mfaToken, code })).status, 200, 'the code was not spent by the refused attempts');
    });

    test('a challenge opens one session: sent again, even with another right code, it is refused as an expired one is', async () => {
      const u = await createUser(t);
      const { app, backupCodes: codes } = await enable(u);
      const { mfaToken } = (await login(u)).body;
      assert.equal((await verify({ mfaToken, code: await app.next() })).status, 200);
      for (const proof of [{ backupCode: codes[0] }, { backupCode: codes[1], cookie: true }]) {
        const again = await verify({ mfaToken, ...proof });
        assert.equal(again.status, 401, again.text);
        assert.equal(again.body.code, 'invalid_mfa_token');
      }
      assert.equal((await status(u)).backupCodesRemaining, 10, 'the refused attempts spent no backup code');
      assert.equal((await verify({ mfaToken: (await login(u)).body.mfaToken, backupCode: codes[0] })).status, 200, 'a new sign-in works');
    });

    test('a challenge takes five wrong codes; after the fifth it is spent, and the right code finds it so', async () => {
      const u = await createUser(t);
      const { app, backupCodes: codes } = await enable(u);
      const within = (await login(u)).body.mfaToken;
      for (let i = 0; i < 4; i++) assert.equal((await verify({ mfaToken: within, code: await app.wrong() })).body.code, 'invalid_mfa_code');
      assert.equal((await verify({ mfaToken: within, backupCode: codes[0] })).status, 200, 'four wrong codes, then the right one');

      const { mfaToken } = (await login(u)).body;
      for (let i = 0; i < 5; i++) {
        const wrong = await verify({ mfaToken, ...(i % 2 ? { code: await app.wrong() } : { backupCode: 'aaaa-bbbb-cccc' }) });
        assert.equal(wrong.status, 400);
        assert.equal(wrong.body.code, 'invalid_mfa_code');
      }
      const late = await verify({ mfaToken, backupCode: codes[1] });
      assert.equal(late.status, 401, late.text);
      assert.equal(late.body.code, 'invalid_mfa_token');
      assert.equal((await status(u)).backupCodesRemaining, 9, 'the right code was not spent');
      assert.equal((await verify({ mfaToken: (await login(u)).body.mfaToken, backupCode: codes[1] })).status, 200, 'signing in again works');
    });

    test('two right codes sent at once with one challenge open one session; the other code stays unused', async () => {
      const u = await createUser(t);
      const { backupCodes: codes } = await enable(u);
      const { mfaToken } = (await login(u)).body;
      const results = await Promise.all([codes[0], codes[1]].map((backupCode) => verify({ mfaToken, backupCode })));
      assert.deepEqual(results.map((r) => r.status).sort(), [200, 401], results.map((r) => r.text).join('\n'));
      assert.equal(results.find((r) => r.status === 401)!.body.code, 'invalid_mfa_token');
      assert.equal((await status(u)).backupCodesRemaining, 9);
    });

    test('a code typed in another script\'s digits or with odd spaces is the same code; so is a backup code in full-width letters or with en dashes', async () => {
      const u = await createUser(t);
      const { app, backupCodes: codes } = await enable(u);
      const code = await app.next();
      const inScript = (zero: number) => [...code].map((c) => String.fromCodePoint(zero + Number(c))).join('');
      const arabic = await verify({ mfaToken: (await login(u)).body.mfaToken, code: `${inScript(0x0660).slice(0, 3)}\u00a0${inScript(0x0660).slice(3)}` });
      assert.equal(arabic.status, 200, arabic.text);
      const fullWidth = await verify({ mfaToken: (await login(u)).body.mfaToken, code: inScript(0xff10) });
      assert.equal(fullWidth.body.code, 'invalid_mfa_code', 'still used once, whatever its digits');
      const wide = [...codes[0]!].map((c) => (c === '-' ? '\u2013' : String.fromCodePoint(c.toUpperCase().codePointAt(0)! + 0xfee0))).join('');
      assert.equal((await verify({ mfaToken: (await login(u)).body.mfaToken, backupCode: wide })).status, 200);
      assert.equal((await verify({ mfaToken: (await login(u)).body.mfaToken, code: '１２３４５' })).body.code, 'invalid_mfa_code', 'five digits are not a code');
    });

    test('cookie mode: the session goes into httpOnly cookies', async () => {
      const u = await createUser(t);
      const { app } = await enable(u);
      const res = await verify({ mfaToken: (await login(u)).body.mfaToken, code: await app.next(), cookie: true });
      assert.equal(res.status, 200);
      assert.equal(res.body.accessToken, undefined);
      const cookies = res.headers.getSetCookie();
      assert.ok(cookies.some((c) => c.startsWith('parley_access=') && /HttpOnly/.test(c)));
      assert.ok(cookies.some((c) => c.startsWith('parley_refresh=') && /Path=\/v1\/auth/.test(c)));
    });

    test('regenerating backup codes needs a code and voids the old ones', async () => {
      const u = await createUser(t);
      const { app, backupCodes: old } = await enable(u);
      assert.equal((await post('/backup-codes/regenerate', u.accessToken, { code: await app.wrong() })).body.code, 'invalid_mfa_code');
      const res = await post('/backup-codes/regenerate', u.accessToken, { code: await app.next() });
      assert.equal(res.status, 200);
      assert.equal(res.body.backupCodes.length, 10);
      assert.equal((await verify({ mfaToken: (await login(u)).body.mfaToken, backupCode: old[0] })).status, 400);
      assert.equal((await verify({ mfaToken: (await login(u)).body.mfaToken, backupCode: res.body.backupCodes[0] })).status, 200);
      assert.equal((await audits(u.id, 'mfa.backup_codes_regenerated')).length, 1);
    });

    test('disable with the password or a code; then sign-in is one step again', async () => {
      const u = await createUser(t);
      await enable(u);
      const wrong = await post('/totp/disable', u.accessToken, { password: 'not the password' });
      assert.equal(wrong.status, 403);
      assert.equal(wrong.body.code, 'invalid_password');
      assert.equal((await post('/totp/disable', u.accessToken, {})).body.code, 'validation_failed');
      assert.equal((await post('/totp/disable', u.accessToken, { password: u.password })).status, 204);
      assert.deepEqual(await status(u), { totpEnabled: false, backupCodesRemaining: 0 });
      assert.equal((await t.deps.db.select().from(backupCodes).where(eq(backupCodes.userId, u.id))).length, 0);
      assert.ok((await login(u)).body.accessToken);
      assert.equal((await audits(u.id, 'mfa.disabled'))[0]!.metadata.confirmedWith, 'password');
      assert.equal((await post('/totp/disable', u.accessToken, { password: u.password })).body.code, 'mfa_not_enabled');

      const v = await createUser(t);
      const { app } = await enable(v);
      assert.equal((await post('/totp/disable', v.accessToken, { code: await app.now() })).body.code, 'invalid_mfa_code', 'a spent code');
      assert.equal((await post('/totp/disable', v.accessToken, { code: await app.next() })).status, 204);
      assert.equal((await status(v)).totpEnabled, false);
    });

    test('managing two-factor needs a signed-in session, not an API key', async () => {
      const u = await createUser(t);
      const { secret } = await t.services.apiKeys.create(u.id, { name: 'script' });
      assert.equal((await t.api('GET', '/v1/auth/mfa')).status, 401);
      for (const path of ['/totp/enroll', '/totp/disable']) {
        const r = await post(path, secret, { password: u.password });
        assert.equal(r.status, 403);
        assert.equal(r.body.code, 'api_key_not_allowed');
      }
    });
  });

  if (backend === 'postgres') {
    describe('two-factor across instances [postgres]', () => {
      let a: TestApp;
      let b: TestApp;
      before(async () => {
        a = await startApp({ backend });
        b = await startApp({ sharedWith: a });
      });
      after(async () => {
        await b.close();
        await a.close();
      });

      test('a challenge used on one instance is spent on the other, and its wrong codes count on both', async () => {
        const u = await createUser(a);
        const { secret } = (await a.api('POST', '/v1/auth/mfa/totp/enroll', { token: u.accessToken })).body;
        const app = authenticator(secret);
        const { backupCodes: codes } = (await a.api('POST', '/v1/auth/mfa/totp/activate', { token: u.accessToken, body: { code: await app.now(), password: u.password } })).body;
        const login = () => a.api('POST', '/v1/auth/login', { body: { email: u.email, password: u.password } });
        const verify = (on: TestApp, body: object) => on.api('POST', '/v1/auth/mfa/verify', { body });

        const { mfaToken } = (await login()).body;
        assert.equal((await verify(a, { mfaToken, code: await app.next() })).status, 200);
        const replay = await verify(b, { mfaToken, backupCode: codes[0] });
        assert.equal(replay.status, 401);
        assert.equal(replay.body.code, 'invalid_mfa_token');

        const second = (await login()).body.mfaToken;
        for (const on of [a, b, a, b, a]) assert.equal((await verify(on, { mfaToken: second, code: await app.wrong() })).body.code, 'invalid_mfa_code');
        assert.equal((await verify(b, { mfaToken: second, backupCode: codes[0] })).body.code, 'invalid_mfa_token');
      });
    });
  }

  describe(`two-factor attempt limits [${backend}]`, () => {
    let t: TestApp;
    before(async () => {
      t = await startApp({ backend, env: { AUTH_RATE_LIMIT_PER_ACCOUNT: '3' } });
    });
    after(() => t.close());

    test('wrong codes lock the account out of MFA for a while, even with the right code', async () => {
      const u = await createUser(t);
      const { secret } = (await t.api('POST', '/v1/auth/mfa/totp/enroll', { token: u.accessToken })).body;
      const app = authenticator(secret);
      assert.equal((await t.api('POST', '/v1/auth/mfa/totp/activate', { token: u.accessToken, body: { code: await app.now(), password: u.password } })).status, 200);
      const { mfaToken } = (await t.api('POST', '/v1/auth/login', { body: { email: u.email, password: u.password } })).body;
      for (let i = 0; i < 3; i++) assert.equal((await t.api('POST', '/v1/auth/mfa/verify', { body: { mfaToken, code: await app.wrong() } })).status, 400);
      const locked = await t.api('POST', '/v1/auth/mfa/verify', { body: { mfaToken, code: await app.next() } });
      assert.equal(locked.status, 429);
      assert.equal(locked.body.code, 'too_many_attempts');
      assert.ok(Number(locked.headers.get('retry-after')) > 0);
    });
  });
}
