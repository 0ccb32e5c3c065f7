import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { Page } from 'playwright-core';
import { totp } from '../../../src/modules/auth/totp.ts';
import { startApp, type TestApp } from '../../support/app.ts';
import { inBrowser, startBrowser, type BrowserSession } from '../../support/browser.ts';
import { createUser, type TestUser } from '../../support/factories.ts';
import { tokenIn, waitForMails } from '../../support/mail.ts';

/** Signs in through the form, as a person would. */
async function signInWithForm(page: Page, user: { email: string; password: string }) {
  await page.getByLabel('Email').fill(user.email);
  await page.getByLabel('Password').fill(user.password);
  await page.getByRole('button', { name: 'Sign in' }).click();
}

// The console is a client of the public API like any other: one backend is enough here.
describe('console: signing in, the session and the emailed links in a real browser', () => {
  let t: TestApp;
  let browser: BrowserSession;
  before(async () => {
    t = await startApp();
    browser = await startBrowser();
  });
  after(async () => {
    await browser.close();
    await t.close();
  });

  const signIn = async (page: Page, user: TestUser, hash: string) => {
    const res = await page.request.post(`${t.url}/v1/auth/login`, { data: { email: user.email, password: user.password, cookie: true } });
    assert.equal(res.status(), 200, await res.text());
    await page.goto(`${t.url}/#${hash}`);
  };

  test('an expired access cookie is refreshed on the account calls too: the sessions list shows, and signing out everywhere ends every session', async (tc) => {
    const user = await createUser(t);
    await inBrowser(tc, browser, async ({ page, context }) => {
      await signIn(page, user, '/settings/profile');
      await page.getByRole('button', { name: 'Save profile' }).waitFor();
      // Fifteen minutes on, the access cookie has expired; the refresh cookie lives on.
      await context.clearCookies({ name: 'parley_access' });
      await page.goto(`${t.url}/#/settings/sessions`);
      const sessions = page.getByRole('list', { name: 'Sessions' }).getByRole('listitem');
      await sessions.filter({ hasText: 'This device' }).waitFor();
      assert.equal(await page.getByText('Authentication is required').count(), 0);

      await context.clearCookies({ name: 'parley_access' });
      await page.getByRole('button', { name: 'Sign out everywhere' }).click();
      await page.getByRole('button', { name: 'Yes, sign out everywhere' }).click();
      await page.getByRole('heading', { name: 'Sign in' }).waitFor();
      assert.equal((await t.api('GET', '/v1/users/me', { token: user.accessToken })).status, 401, 'the other session ended');
      assert.equal((await page.request.post(`${t.url}/v1/auth/refresh`, { data: {} })).status(), 401, "the browser's session ended");
    });
  });

  test('two-factor sign-in with a backup code instead of the app: it is accepted once', async (tc) => {
    const user = await createUser(t);
    const { secret } = (await t.api('POST', '/v1/auth/mfa/totp/enroll', { token: user.accessToken, body: {} })).body;
    const code = await totp.codeAt(secret, Math.floor(Date.now() / 1000 / 30) * 30);
    const activated = await t.api('POST', '/v1/auth/mfa/totp/activate', { token: user.accessToken, body: { code, password: user.password } });
    assert.equal(activated.status, 200);
    const [first] = activated.body.backupCodes as string[];
    await inBrowser(tc, browser, async ({ page }) => {
      await page.goto(t.url);
      await signInWithForm(page, user);
      await page.getByRole('button', { name: 'Use a backup code' }).click();
      await page.getByLabel('Backup code').fill(first!.toUpperCase());
      await page.getByRole('button', { name: 'Verify' }).click();
      await page.getByRole('navigation', { name: 'Main' }).waitFor();
      assert.equal((await t.api('GET', '/v1/auth/mfa', { token: user.accessToken })).body.backupCodesRemaining, 9, 'the code is spent');

      // Typed where the app's code goes, a backup code is still taken as one; a spent one is refused with the server's reason.
      await page.getByRole('button', { name: 'Sign out' }).click();
      await signInWithForm(page, user);
      await page.getByLabel('Code from your authenticator app').fill(first!);
      await page.getByRole('button', { name: 'Verify' }).click();
      await page.getByRole('alert').waitFor();
      await page.getByLabel('Code from your authenticator app').fill(activated.body.backupCodes[1]);
      await page.getByRole('button', { name: 'Verify' }).click();
      await page.getByRole('navigation', { name: 'Main' }).waitFor();
      assert.equal((await t.api('GET', '/v1/auth/mfa', { token: user.accessToken })).body.backupCodesRemaining, 8);
    });
  });

  /** A user with two-factor on; `codeAt(offset)` is the app's code `offset` steps from now. */
  async function withTwoFactor() {
    const user = await createUser(t);
    const { secret } = (await t.api('POST', '/v1/auth/mfa/totp/enroll', { token: user.accessToken, body: {} })).body;
    const codeAt = (offset = 0) => totp.codeAt(secret, (Math.floor(Date.now() / 1000 / 30) + offset) * 30);
    const activated = await t.api('POST', '/v1/auth/mfa/totp/activate', { token: user.accessToken, body: { code: await codeAt(), password: user.password } });
    assert.equal(activated.status, 200, activated.text);
    return { user, codeAt, backupCodes: activated.body.backupCodes as string[] };
  }

  test('a challenge the server no longer takes (used, expired, past its wrong codes) sends the page back to the password step, saying why', async (tc) => {
    const { user, codeAt, backupCodes } = await withTwoFactor();
    // A challenge already used, as after a double submit, or one that ran out while the tab sat there.
    const challenge = await t.api('POST', '/v1/auth/login', { body: { email: user.email, password: user.password } });
    assert.equal((await t.api('POST', '/v1/auth/mfa/verify', { body: { mfaToken: challenge.body.mfaToken, backupCode: backupCodes[0] } })).status, 200);
    await inBrowser(tc, browser, async ({ page }) => {
      await page.goto(`${t.url}/#${new URLSearchParams({ mfaRequired: 'true', mfaToken: challenge.body.mfaToken, expiresIn: '300' })}`);
      await page.getByLabel('Code from your authenticator app').fill(await codeAt(1));
      await page.getByRole('button', { name: 'Verify' }).click();
      await page.getByRole('heading', { name: 'Sign in' }).waitFor();
      await page.getByRole('alert').filter({ hasText: 'Sign in again' }).waitFor();
      assert.equal(await page.getByLabel('Code from your authenticator app').count(), 0);
      // Signing in again makes a new challenge, which the same code completes.
      await signInWithForm(page, user);
      await page.getByLabel('Code from your authenticator app').fill(await codeAt(1));
      await page.getByRole('button', { name: 'Verify' }).click();
      await page.getByRole('navigation', { name: 'Main' }).waitFor();
    });
  });

  test("a code typed in another script's digits (full-width, with a space) is sent as the app's code, not as a backup code", async (tc) => {
    const { user, codeAt } = await withTwoFactor();
    const fullWidth = (code: string) => [...code].map((d) => String.fromCodePoint(0xff10 + Number(d))).join('');
    await inBrowser(tc, browser, async ({ page }) => {
      const sent: unknown[] = [];
      page.on('request', (r) => void (r.url().endsWith('/v1/auth/mfa/verify') && sent.push(r.postDataJSON())));
      await page.goto(t.url);
      await signInWithForm(page, user);
      const code = fullWidth(await codeAt(1));
      await page.getByLabel('Code from your authenticator app').fill(`${code.slice(0, 3)} ${code.slice(3)}`);
      await page.getByRole('button', { name: 'Verify' }).click();
      await page.getByRole('navigation', { name: 'Main' }).waitFor();
      assert.deepEqual(sent.map((b: any) => [b.code, b.backupCode]), [[code, undefined]]);
    });
  });

  test('a link into the console that needs signing in comes back to its page after sign-in, a share link included', async (tc) => {
    const owner = await createUser(t);
    const reader = await createUser(t);
    const doc = (await t.api('POST', '/v1/documents', { token: owner.accessToken, body: { title: 'Harbour plan', body: 'Boats at dawn.' } })).body;
    const link = (await t.api('POST', `/v1/documents/${doc.id}/links`, { token: owner.accessToken, body: { role: 'viewer' } })).body;
    await inBrowser(tc, browser, async ({ page }) => {
      await page.goto(`${t.url}/#/documents/${doc.id}`);
      await signInWithForm(page, owner);
      await page.getByRole('heading', { name: 'Harbour plan' }).waitFor();
      assert.equal(new URL(page.url()).hash, `#/documents/${doc.id}`);
    });
    await inBrowser(tc, browser, async ({ page }) => {
      const shared = `#/documents/shared/${encodeURIComponent(link.token)}`;
      await page.goto(`${t.url}/${shared}`);
      await signInWithForm(page, reader);
      await page.getByRole('heading', { name: 'Harbour plan' }).waitFor();
      assert.equal(new URL(page.url()).hash, shared);
      // Signed out and in again from the sign-in page itself: the chat, not the old link.
      await page.getByRole('button', { name: 'Sign out' }).click();
      await signInWithForm(page, reader);
      await page.getByRole('button', { name: 'New chat' }).waitFor();
      assert.equal(new URL(page.url()).hash, '#/chat');
    });
  });

  test('forgot password: the emailed link opens a console page that sets a new one; used again, it says so plainly', async (tc) => {
    const user = await createUser(t);
    const password = 'a brand new passphrase';
    await inBrowser(tc, browser, async ({ page }) => {
      await page.goto(t.url);
      await page.getByRole('button', { name: 'Forgot password?' }).click();
      await page.getByLabel('Email').fill(user.email);
      await page.getByRole('button', { name: 'Send reset link' }).click();
      await page.getByRole('status').filter({ hasText: 'a link to reset its password is on its way' }).waitFor();

      const [mail] = await waitForMails(t, user.email, /Reset your password/);
      assert.match(mail!.text, /http:\/\/parley\.test\/reset-password\?token=/, 'the link is on PUBLIC_URL');
      const link = `${t.url}/reset-password?token=${encodeURIComponent(tokenIn(mail!.text, '/reset-password'))}`;
      await page.goto(link);
      await page.getByLabel('New password').fill(password);
      await page.getByLabel('Confirm password').fill('not the same one');
      await page.getByRole('button', { name: 'Set new password' }).click();
      await page.getByRole('alert').filter({ hasText: 'not the same' }).waitFor();
      await page.getByLabel('Confirm password').fill(password);
      await page.getByRole('button', { name: 'Set new password' }).click();
      await page.getByRole('status').filter({ hasText: 'Your new password is set' }).waitFor();
      await page.getByRole('link', { name: 'Sign in' }).click();
      await signInWithForm(page, { email: user.email, password });
      await page.getByRole('navigation', { name: 'Main' }).waitFor();
      assert.equal((await t.api('POST', '/v1/auth/login', { body: { email: user.email, password: user.password } })).status, 401, 'the old password is gone');
      assert.equal((await t.api('GET', '/v1/users/me', { token: user.accessToken })).status, 401, 'the other sessions ended');

      // The link again, signed out: spent, said plainly, with the way to a new one.
      await page.getByRole('button', { name: 'Sign out' }).click();
      await page.getByRole('heading', { name: 'Sign in' }).waitFor();
      await page.goto(link);
      await page.getByLabel('New password').fill('yet another passphrase');
      await page.getByLabel('Confirm password').fill('yet another passphrase');
      await page.getByRole('button', { name: 'Set new password' }).click();
      await page.getByRole('alert').filter({ hasText: 'This link is invalid, has expired or was already used.' }).waitFor();
      await page.getByRole('link', { name: 'Forgot password?' }).click();
      await page.getByRole('button', { name: 'Send reset link' }).waitFor();
    });
  });

  test('the verification link in the sign-up email confirms the address in the console; a bad one is refused plainly', async (tc) => {
    const user = await createUser(t);
    const [mail] = await waitForMails(t, user.email, /Confirm your email address/);
    const token = tokenIn(mail!.text, '/verify-email');
    const page = await t.api('GET', `/verify-email?token=${encodeURIComponent(token)}`);
    assert.equal(page.status, 200);
    assert.match(page.headers.get('content-type') ?? '', /^text\/html/);
    assert.equal((await t.api('GET', '/v1/users/me', { token: user.accessToken })).body.emailVerified, false, 'opening the page is not confirming');
    await inBrowser(tc, browser, async ({ page }) => {
      await page.goto(`${t.url}/verify-email?token=${encodeURIComponent(token)}`);
      await page.getByRole('status').filter({ hasText: 'Your email address is confirmed.' }).waitFor();
      assert.equal((await t.api('GET', '/v1/users/me', { token: user.accessToken })).body.emailVerified, true);
      await page.getByRole('link', { name: 'Sign in' }).waitFor();

      await page.goto(`${t.url}/verify-email?token=not-a-token`);
      await page.getByRole('alert').filter({ hasText: 'This link is invalid, has expired or was already used.' }).waitFor();
    });
  });
});
