import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { after, before, describe, test } from 'node:test';
import type { Page } from 'playwright-core';
import { totp } from '../../../src/modules/auth/totp.ts';
import { startApp, type TestApp } from '../../support/app.ts';
import { inBrowser, startBrowser, type BrowserSession } from '../../support/browser.ts';
import { createUser, uniqueEmail, type TestUser } from '../../support/factories.ts';
import { unzip } from '../../support/zip.ts';

/** Codes as an authenticator app shows them, for the step `offset` steps from now. */
const codeAt = (secret: string, offset = 0) => totp.codeAt(secret, Math.floor(Date.now() / 1000 / 30 + offset) * 30);

async function signIn(page: Page, url: string, user: { email: string; password: string }) {
  await page.goto(url);
  await page.getByLabel('Email').fill(user.email);
  await page.getByLabel('Password').fill(user.password);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('navigation', { name: 'Main' }).waitFor();
}

// The console is a client of the public API like any other: one backend is enough here.
describe('console: account pages and the notifications bell in a real browser', () => {
  let t: TestApp;
  let browser: BrowserSession;
  let admin: TestUser;
  before(async () => {
    // A configured provider, never contacted: the sign-in page only links to it.
    t = await startApp({ env: { GITHUB_CLIENT_ID: 'console-test', GITHUB_CLIENT_SECRET: 'console-test-secret' } });
    browser = await startBrowser();
    admin = await createUser(t, { admin: true });
  });
  after(async () => {
    await browser.close();
    await t.close();
  });

  test('sign-in offers each configured provider, starting its flow with a way back to the console', async (tc) => {
    await inBrowser(tc, browser, async ({ page }) => {
      await page.goto(t.url);
      const github = page.getByRole('link', { name: 'Continue with GitHub' });
      const href = new URL((await github.getAttribute('href'))!, t.url);
      assert.equal(href.pathname, '/v1/auth/oauth/github/authorize');
      // Back to the sign-in route, which goes on to the page the user arrived on: that route stays in the tab, not in a URL sent to the server.
      assert.equal(href.searchParams.get('redirectTo'), `${t.url}/#/sign-in`);
    });
  });

  test('a provider sign-in that needs a second factor comes back with the challenge in the fragment: the page asks for the code', async (tc) => {
    const user = await createUser(t);
    const { secret } = (await t.api('POST', '/v1/auth/mfa/totp/enroll', { token: user.accessToken, body: {} })).body;
    assert.equal((await t.api('POST', '/v1/auth/mfa/totp/activate', { token: user.accessToken, body: { code: await codeAt(secret), password: user.password } })).status, 200);
    // The challenge is what the callback puts in the fragment; a password sign-in makes one just the same.
    const challenge = await t.api('POST', '/v1/auth/login', { body: { email: user.email, password: user.password } });
    assert.equal(challenge.body.mfaRequired, true);
    await inBrowser(tc, browser, async ({ page }) => {
      await page.goto(`${t.url}/#${new URLSearchParams({ mfaRequired: 'true', mfaToken: challenge.body.mfaToken, expiresIn: '300' })}`);
      await page.getByLabel('Code from your authenticator app').fill(await codeAt(secret, 1));
      assert.equal(new URL(page.url()).hash, '#/sign-in');
      await page.getByRole('button', { name: 'Verify' }).click();
      await page.getByRole('navigation', { name: 'Main' }).waitFor();
    });
  });

  test('enrol TOTP in settings, sign out, and signing in again asks for a code', async (tc) => {
    const user = await createUser(t);
    await inBrowser(tc, browser, async ({ page }) => {
      await signIn(page, t.url, user);
      await page.getByRole('link', { name: 'Settings' }).click();
      await page.getByRole('link', { name: 'Two-factor sign-in' }).click();
      await page.getByRole('button', { name: 'Set up two-factor sign-in' }).click();
      const secret = await page.getByLabel('Secret key').inputValue();
      assert.match(secret, /^[A-Z2-7]{16,}$/);
      assert.match(await page.getByRole('link', { name: 'Open in an authenticator app' }).getAttribute('href') ?? '', /^otpauth:\/\/totp\//);

      // Without the password (a session alone), or with a wrong code, it is refused with the server's reason, and nothing is turned on.
      await page.getByLabel('Code from your authenticator app').fill(await codeAt(secret));
      await page.getByRole('button', { name: 'Confirm and turn on' }).click();
      await page.getByRole('alert').filter({ hasText: 'Confirm with your password' }).waitFor();
      await page.getByLabel('Your password').fill(user.password);
      await page.getByLabel('Code from your authenticator app').fill('000000' === (await codeAt(secret)) ? '111111' : '000000');
      await page.getByRole('button', { name: 'Confirm and turn on' }).click();
      await page.getByRole('alert').filter({ hasText: /code is wrong/ }).waitFor();
      assert.equal((await t.api('GET', '/v1/auth/mfa', { token: user.accessToken })).body.totpEnabled, false);

      await page.getByLabel('Code from your authenticator app').fill(await codeAt(secret));
      await page.getByRole('button', { name: 'Confirm and turn on' }).click();
      const codes = page.getByRole('region', { name: 'Backup codes' }).getByRole('listitem');
      await codes.first().waitFor();
      assert.equal(await codes.count(), 10);
      await page.getByRole('button', { name: 'I have saved them' }).click();
      await page.getByText('Backup codes left: 10').waitFor();

      await page.getByRole('button', { name: 'Sign out' }).click();
      await page.getByLabel('Email').fill(user.email);
      await page.getByLabel('Password').fill(user.password);
      await page.getByRole('button', { name: 'Sign in' }).click();
      // A code is accepted once: the next step's, which the server takes as drift.
      await page.getByLabel('Code from your authenticator app').fill(await codeAt(secret, 1));
      await page.getByRole('button', { name: 'Verify' }).click();
      await page.getByRole('navigation', { name: 'Main' }).waitFor();
      // createUser's own session (its token) was not the one the browser signed out of.
      const mfa = await t.api('GET', '/v1/auth/mfa', { token: user.accessToken });
      assert.equal(mfa.body.totpEnabled, true);

      // Turning it off takes the password (or a code); a wrong one is refused and it stays on.
      await page.getByRole('link', { name: 'Settings' }).click();
      await page.getByRole('link', { name: 'Two-factor sign-in' }).click();
      await page.getByLabel('Password to turn off').fill('not the password');
      await page.getByRole('button', { name: 'Turn off two-factor sign-in' }).click();
      await page.getByRole('alert').waitFor();
      assert.equal((await t.api('GET', '/v1/auth/mfa', { token: user.accessToken })).body.totpEnabled, true);
      await page.getByLabel('Password to turn off').fill(user.password);
      await page.getByRole('button', { name: 'Turn off two-factor sign-in' }).click();
      await page.getByRole('status').filter({ hasText: 'Two-factor sign-in is off.' }).waitFor();
      await page.getByRole('button', { name: 'Set up two-factor sign-in' }).waitFor();
      assert.equal((await t.api('GET', '/v1/auth/mfa', { token: user.accessToken })).body.totpEnabled, false);
    });
  });

  test('a notification an admin sends shows in the bell live; reading it clears the count', async (tc) => {
    const user = await createUser(t);
    await inBrowser(tc, browser, async ({ page }) => {
      // Listen for the frame from the socket's first moment: waiting after the socket opened could miss it.
      const subscribed = new Promise<void>((resolve) =>
        page.on('websocket', (ws) => {
          if (!ws.url().endsWith('/v1/ws')) return;
          ws.on('framereceived', (f) => {
            if (typeof f.payload === 'string' && JSON.parse(f.payload).type === 'subscribed') resolve();
          });
        }),
      );
      await signIn(page, t.url, user);
      await subscribed;
      // Signing in from a new device (the browser) notified the user; read elsewhere, the bell follows live.
      await page.getByRole('link', { name: 'Notifications, 1 unread' }).waitFor();
      assert.equal((await t.api('POST', '/v1/notifications/read-all', { token: user.accessToken, body: {} })).status, 200);
      await page.getByRole('link', { name: 'Notifications', exact: true }).waitFor();

      const send = (title: string) =>
        t.api('POST', '/v1/notifications', { token: admin.accessToken, body: { userId: user.id, category: 'system.message', title, body: 'From the operators.' } });
      assert.equal((await send('Maintenance tonight')).status, 201);
      await page.getByRole('link', { name: 'Notifications, 1 unread' }).waitFor();
      await page.getByRole('link', { name: 'Notifications, 1 unread' }).click();
      await page.getByRole('heading', { name: 'Maintenance tonight' }).waitFor();

      // On the inbox, a new one arrives on top without a reload.
      assert.equal((await send('Second notice')).status, 201);
      await page.getByRole('link', { name: 'Notifications, 2 unread' }).waitFor();
      const items = page.getByRole('list', { name: 'Notifications' }).getByRole('listitem');
      await items.first().getByRole('heading', { name: 'Second notice' }).waitFor();

      await page.getByRole('button', { name: 'Mark “Maintenance tonight” read' }).click();
      await page.getByRole('link', { name: 'Notifications, 1 unread' }).waitFor();
      await page.getByRole('button', { name: 'Mark all read' }).click();
      await page.getByRole('link', { name: 'Notifications', exact: true }).waitFor();
      assert.equal((await t.api('GET', '/v1/notifications/unread-count', { token: user.accessToken })).body.count, 0);

      // Preferences per category and channel: email off for operators' messages.
      await page.getByRole('link', { name: 'Preferences' }).click();
      await page.getByRole('link', { name: 'Notifications', exact: true }).first().waitFor();
      const email = page.getByRole('checkbox', { name: 'system.message: Email' });
      assert.equal(await email.isChecked(), true);
      await email.uncheck();
      await page.getByRole('status').filter({ hasText: 'Saved.' }).waitFor();
      const prefs = await t.api('GET', '/v1/notifications/preferences', { token: user.accessToken });
      const row = prefs.body.data.find((r: { category: string }) => r.category === 'system.message');
      assert.deepEqual([row.channels.email.enabled, row.channels.email.chosen], [false, true]);
    });
  });

  test('the inbox pages: twenty at a time, older ones on request, each once', async (tc) => {
    const user = await createUser(t);
    for (let i = 1; i <= 23; i++) {
      const sent = await t.api('POST', '/v1/notifications', { token: admin.accessToken, body: { userId: user.id, category: 'system.message', title: `Notice ${i}`, body: 'Paged.' } });
      assert.equal(sent.status, 201);
    }
    await inBrowser(tc, browser, async ({ page }) => {
      await signIn(page, t.url, user);
      await page.goto(`${t.url}/#/notifications`);
      const items = page.getByRole('list', { name: 'Notifications' }).getByRole('listitem');
      await items.first().waitFor();
      assert.equal(await items.count(), 20);
      await page.getByRole('button', { name: 'Load more' }).click();
      // Unread ones' headings start with "Unread: " for screen readers.
      await page.getByRole('heading', { name: /(^|: )Notice 1$/ }).waitFor();
      const titles = await page.getByRole('list', { name: 'Notifications' }).getByRole('heading').allTextContents();
      const notices = titles.map((x) => x.replace(/^Unread: /, '')).filter((x) => x.startsWith('Notice '));
      assert.equal(notices.length, 23);
      assert.equal(new Set(notices).size, 23, 'none twice across the pages');
      assert.equal(await page.getByRole('button', { name: 'Load more' }).count(), 0);
    });
  });

  test('on a phone: the dark theme applies at once and stays after a reload', async (tc) => {
    const user = await createUser(t, { name: 'Grace' });
    await inBrowser(
      tc,
      browser,
      async ({ page }) => {
        await signIn(page, t.url, user);
        await page.goto(`${t.url}/#/settings/preferences`);
        assert.equal(await page.evaluate('document.documentElement.dataset.theme'), 'light');
        await page.getByLabel('Theme').selectOption('dark');
        // Locators, not waitForFunction: a string predicate is evaluated in the page, which the console's CSP forbids.
        await page.locator('html[data-theme="dark"]').waitFor({ state: 'attached' });
        await page.getByLabel('Time zone').fill('Europe/Paris');
        await page.getByRole('button', { name: 'Save preferences' }).click();
        await page.getByRole('status').filter({ hasText: 'Saved.' }).waitFor();
        const prefs = await t.api('GET', '/v1/users/me/preferences', { token: user.accessToken });
        assert.deepEqual([prefs.body.theme, prefs.body.timezone], ['dark', 'Europe/Paris']);

        await page.reload();
        await page.getByLabel('Theme').waitFor();
        assert.equal(await page.evaluate('document.documentElement.dataset.theme'), 'dark');
        // Nothing runs off the side of a 390-pixel screen.
        assert.ok(await page.evaluate('document.documentElement.scrollWidth <= innerWidth'));

        await page.getByRole('link', { name: 'Profile' }).click();
        await page.getByLabel('Name').fill('Grace Hopper');
        await page.getByRole('button', { name: 'Save profile' }).click();
        await page.getByText('Grace Hopper', { exact: true }).waitFor();
      },
      { viewport: { width: 390, height: 844 } },
    );
  });

  test('revoke another session: its token stops working at once', async (tc) => {
    const user = await createUser(t);
    await inBrowser(tc, browser, async ({ page }) => {
      await signIn(page, t.url, user);
      await page.goto(`${t.url}/#/settings/sessions`);
      const sessions = page.getByRole('list', { name: 'Sessions' }).getByRole('listitem');
      await sessions.nth(1).waitFor();
      assert.equal(await sessions.count(), 2);
      await sessions.filter({ hasText: 'This device' }).waitFor();
      assert.equal(await sessions.filter({ hasText: 'This device' }).getByRole('button').count(), 0);
      await page.getByRole('button', { name: /^Revoke session/ }).click();
      await page.getByRole('status').filter({ hasText: 'Signed that device out.' }).waitFor();
      await sessions.nth(1).waitFor({ state: 'detached' });
      assert.equal(await sessions.count(), 1);
      assert.equal((await t.api('GET', '/v1/users/me', { token: user.accessToken })).status, 401);

      // Sign out everywhere, after a confirmation: this browser and every other session.
      const other = await t.api('POST', '/v1/auth/login', { body: { email: user.email, password: user.password } });
      assert.equal((await t.api('GET', '/v1/users/me', { token: other.body.accessToken })).status, 200);
      await page.getByRole('button', { name: 'Sign out everywhere' }).click();
      await page.getByRole('button', { name: 'Yes, sign out everywhere' }).click();
      await page.getByRole('heading', { name: 'Sign in' }).waitFor();
      assert.equal((await t.api('GET', '/v1/users/me', { token: other.body.accessToken })).status, 401);
      assert.equal((await page.request.get(`${t.url}/v1/users/me`)).status(), 401, 'the cookie is signed out too');
    });
  });

  test('sign up, download the data, delete the account; signing in then fails', async (tc) => {
    const email = uniqueEmail('console-delete');
    const password = 'a long enough password';
    await inBrowser(tc, browser, async ({ page }) => {
      await page.goto(t.url);
      await page.getByRole('button', { name: 'Create an account' }).click();
      await page.getByLabel('Name').fill('Short Lived');
      await page.getByLabel('Email').fill(email);
      await page.getByLabel('Password').fill(password);
      await page.getByRole('button', { name: 'Create account' }).click();
      await page.getByRole('navigation', { name: 'Main' }).waitFor();
      await page.goto(`${t.url}/#/settings/data`);

      const download = page.waitForEvent('download');
      await page.getByRole('link', { name: 'Download my data' }).click();
      const file = await (await download).path();
      // The server's zip, downloaded with the session cookie.
      const entries = await unzip(await readFile(file));
      const profile = JSON.parse(entries.get('users/profile.json')!.toString('utf8'));
      assert.equal(profile.email, email);
      assert.equal(profile.preferences.theme, 'system');
      assert.deepEqual(JSON.parse(entries.get('chat/conversations.json')!.toString('utf8')), []);

      const remove = page.getByRole('button', { name: 'Delete my account' });
      await page.getByLabel('Password').fill('not the password');
      assert.equal(await remove.isDisabled(), true);
      await page.getByLabel(`Type ${email} to confirm`).fill(email);
      // A wrong password: the server's reason, and the account stays.
      await remove.click();
      await page.getByRole('alert').waitFor();
      await page.getByLabel('Password').fill(password);
      await remove.click();

      await page.getByRole('heading', { name: 'Sign in' }).waitFor();
      await page.getByLabel('Email').fill(email);
      await page.getByLabel('Password').fill(password);
      await page.getByRole('button', { name: 'Sign in' }).click();
      await page.getByRole('alert').waitFor();
      assert.equal((await t.api('POST', '/v1/auth/login', { body: { email, password } })).status, 401);
    });
  });
});
