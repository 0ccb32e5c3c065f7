import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { Page } from 'playwright-core';
import { startApp, type TestApp } from '../../support/app.ts';
import { inBrowser, startBrowser, type BrowserSession } from '../../support/browser.ts';
import { eventually } from '../../support/eventually.ts';
import { createUser, type TestUser } from '../../support/factories.ts';

// The console is a client of the public API like any other: one backend is enough here.
describe('console: the admin area in a real browser', () => {
  let t: TestApp;
  let browser: BrowserSession;
  let admin: TestUser;
  let failing = true;
  before(async () => {
    // The storage listing's first view computes its rollup; a scheduled refresh firing mid-file would freeze it before the storage test's user exists.
    t = await startApp({ env: { SCHEDULES: 'usage.storage=off' } });
    browser = await startBrowser();
    admin = await createUser(t, { admin: true, name: 'Root' });
    // A queue of the test's own, run by the app's worker like any module's: it fails until told otherwise.
    t.services.jobs.define('test.admin-console', async () => {
      if (failing) throw new Error('the upstream said no');
      return { ok: true };
    });
  });
  after(async () => {
    await browser.close();
    await t.close();
  });

  /** Signs in through the form (which lands on chat), then opens `hash`. */
  async function signIn(page: Page, user: TestUser, hash = '') {
    page.setDefaultTimeout(10_000);
    await page.goto(t.url);
    await page.getByLabel('Email').fill(user.email);
    await page.getByLabel('Password').fill(user.password);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('navigation', { name: 'Main' }).waitFor();
    if (hash) await page.goto(`${t.url}/${hash}`);
  }

  const asAdmin = (method: string, path: string, body?: unknown) => t.api(method, path, { token: admin.accessToken, body });

  test('ban one user and disable another: their next requests are refused, and the audit log shows the ban', async (tc) => {
    const banned = await createUser(t);
    const disabled = await createUser(t);
    assert.equal((await t.api('GET', '/v1/users/me', { token: banned.accessToken })).status, 200);
    await inBrowser(tc, browser, async ({ page }) => {
      await signIn(page, admin);
      await page.getByRole('link', { name: 'Admin' }).click();
      await page.getByRole('heading', { name: 'Admin: Users' }).waitFor();

      // Disable: a confirmation first, then the row says so.
      await page.getByLabel('Email contains').fill(disabled.email);
      await page.getByRole('button', { name: 'Filter' }).click();
      await page.getByRole('button', { name: `Disable ${disabled.email}` }).click();
      const confirm = page.getByRole('dialog', { name: `Disable ${disabled.email}` });
      await confirm.getByRole('button', { name: 'Cancel' }).click();
      assert.equal((await t.api('GET', '/v1/users/me', { token: disabled.accessToken })).status, 200, 'cancel does nothing');
      await page.getByRole('button', { name: `Disable ${disabled.email}` }).click();
      await confirm.getByRole('button', { name: 'Disable' }).click();
      await page.getByRole('button', { name: `Enable ${disabled.email}` }).waitFor();
      const refused = await t.api('GET', '/v1/users/me', { token: disabled.accessToken });
      assert.equal(refused.status, 401);

      // Ban, from the user's own page.
      await page.getByLabel('Email contains').fill(banned.email);
      await page.getByRole('button', { name: 'Filter' }).click();
      await page.getByRole('link', { name: banned.email }).click();
      await page.getByRole('heading', { name: banned.email, exact: true }).waitFor();
      await page.getByLabel('Ban for').selectOption({ label: '7 days' });
      await page.getByLabel('Reason').fill('scraping the gateway');
      await page.getByRole('button', { name: `Ban ${banned.email}` }).click();
      await page.getByRole('dialog', { name: `Ban ${banned.email}` }).getByRole('button', { name: 'Ban' }).click();
      await page.getByRole('status').filter({ hasText: `${banned.email} is banned.` }).waitFor();
      const next = await t.api('GET', '/v1/users/me', { token: banned.accessToken });
      assert.equal(next.status, 403);
      assert.equal(next.body.code, 'banned');

      // The user's audit log, one link away, has the ban with its reason.
      await page.getByRole('region', { name: banned.email }).getByRole('link', { name: 'Audit log' }).click();
      await page.getByRole('heading', { name: 'Admin: Audit log' }).waitFor();
      assert.equal(await page.getByLabel('User id').inputValue(), banned.id);
      const row = page.getByRole('row').filter({ hasText: 'ban.created' });
      await row.waitFor();
      assert.match(await row.innerText(), /scraping the gateway/);

      // Abuse and bans lists it in force; lifting asks first, then the user may call again.
      await page.getByRole('navigation', { name: 'Admin sections' }).getByRole('link', { name: 'Abuse and bans' }).click();
      await page.getByLabel('Banned subject').fill(banned.id);
      await page.getByRole('button', { name: 'Filter' }).nth(1).click();
      await page.getByRole('button', { name: `Lift the ban on ${banned.id}` }).click();
      await page.getByRole('dialog', { name: `Lift the ban on ${banned.id}` }).getByRole('button', { name: 'Lift ban' }).click();
      await page.getByRole('region', { name: 'Bans', exact: true }).getByText('Nothing here.').waitFor();
      assert.equal((await t.api('GET', '/v1/users/me', { token: banned.accessToken })).status, 200);
    });
  });

  test("change a user's role, and set a quota", async (tc) => {
    const u = await createUser(t);
    await inBrowser(tc, browser, async ({ page }) => {
      await signIn(page, admin, '#/admin/users');
      await page.getByLabel('Email contains').fill(u.email);
      await page.getByRole('button', { name: 'Filter' }).click();
      await page.getByLabel(`Role of ${u.email}`).selectOption('admin');
      await page.getByRole('status').filter({ hasText: `${u.email} is now admin.` }).waitFor();
      assert.equal((await asAdmin('GET', `/v1/admin/users/${u.id}`)).body.role, 'admin');
      assert.equal((await t.api('GET', '/v1/admin/users', { token: u.accessToken })).status, 200, 'the new admin may use admin routes');

      await page.getByRole('link', { name: u.email }).click();
      await page.getByLabel('Period').selectOption('month');
      await page.getByLabel('Limit in USD').fill('12.5');
      await page.getByRole('button', { name: 'Set quota' }).click();
      await page.getByRole('cell', { name: '$12.50' }).waitFor();
      const budgets = await asAdmin('GET', `/v1/admin/budgets?userId=${u.id}`);
      assert.deepEqual(budgets.body.data.map((b: any) => [b.period, Number(b.limit)]), [['month', 12.5]]);
      // A bad amount is the API's 400, shown by the form.
      await page.getByLabel('Limit in USD').fill('1.1234567');
      await page.getByRole('button', { name: 'Set quota' }).click();
      await page.getByRole('alert').waitFor();
    });
  });

  test('a dead job shows with its error; retry runs it again', async (tc) => {
    failing = true;
    const job = await t.services.jobs.enqueue('test.admin-console', { n: 1 }, { attempts: 1 });
    await eventually(async () => assert.equal((await asAdmin('GET', `/v1/admin/jobs/${job.id}`)).body.state, 'dead'), 15_000);
    await inBrowser(tc, browser, async ({ page }) => {
      await signIn(page, admin, '#/admin/jobs');
      await page.getByLabel('Queue').fill('test.admin-console');
      await page.getByRole('button', { name: 'Filter' }).click();
      const row = page.locator(`tr[data-job="${job.id}"]`);
      await row.getByText('the upstream said no').waitFor();
      failing = false;
      await page.getByRole('button', { name: `Retry test.admin-console job ${job.id}` }).click();
      await page.getByRole('status').filter({ hasText: `job ${job.id} runs again` }).waitFor();
      await eventually(async () => assert.equal((await asAdmin('GET', `/v1/admin/jobs/${job.id}`)).body.state, 'completed'), 15_000);
      await page.getByLabel('State').selectOption('completed');
      await page.getByRole('button', { name: 'Filter' }).click();
      await row.getByRole('cell', { name: 'completed' }).waitFor();
      await page.getByRole('heading', { name: 'Schedules' }).waitFor();
      await page.getByRole('cell', { name: 'usage.rollup', exact: true }).first().waitFor();
    });
  });

  test('the outbox, usage with its CSV and health each answer', async (tc) => {
    await inBrowser(tc, browser, async ({ page }) => {
      await signIn(page, admin, '#/admin/health');
      await page.getByRole('heading', { name: 'Admin: Health' }).waitFor();
      const db = page.getByRole('row').filter({ hasText: 'database' });
      assert.equal(await db.getByRole('cell').nth(1).innerText(), 'OK');
      await page.getByRole('status').filter({ hasText: 'ready' }).waitFor();

      await page.getByRole('navigation', { name: 'Admin sections' }).getByRole('link', { name: 'Outbox' }).click();
      await page.getByRole('heading', { name: 'Admin: Outbox' }).waitFor();
      await page.getByRole('region', { name: 'Sent mail' }).getByText(/Nothing here|@example\.com/).first().waitFor();

      await page.getByRole('navigation', { name: 'Admin sections' }).getByRole('link', { name: 'Usage' }).click();
      await page.getByRole('heading', { name: 'Admin: Usage' }).waitFor();
      const href = await page.getByRole('link', { name: 'Export CSV' }).getAttribute('href');
      assert.equal(href, '/v1/admin/usage/export');
      const csv = await page.request.get(`${t.url}${href}`);
      assert.equal(csv.status(), 200);
      assert.match(csv.headers()['content-type']!, /text\/csv/);
      assert.match(await csv.text(), /^day,userId,apiKeyId/);
    });
  });

  test('budgets: a default set, then one user\'s own; each applies to whom it should and is removed in place', async (tc) => {
    const u = await createUser(t);
    const limitsOf = async (who: TestUser) => ((await t.api('GET', '/v1/usage/limits', { token: who.accessToken })).body.data as any[]).filter((b) => b.period === 'day');
    await inBrowser(tc, browser, async ({ page }) => {
      await signIn(page, admin, '#/admin/budgets');
      await page.getByRole('heading', { name: 'Admin: Budgets' }).waitFor();
      const defaults = page.getByRole('region', { name: 'Default budgets' });
      await defaults.getByLabel('Per day: USD limit').fill('2.50');
      await defaults.getByRole('button', { name: 'Save day' }).click();
      await page.getByRole('status').filter({ hasText: 'Saved the day budget of users without their own.' }).waitFor();
      assert.deepEqual((await limitsOf(u)).map((b) => [b.scope, b.limit]), [['default', '2.500000']]);

      await page.getByLabel('User id').fill(u.id);
      await page.getByRole('button', { name: 'Show budgets' }).click();
      const own = page.getByRole('region', { name: 'User budgets' });
      await own.getByLabel('Per day: token limit').fill('1000');
      await own.getByRole('button', { name: 'Save day' }).click();
      await page.getByRole('status').filter({ hasText: 'Saved the day budget of this user.' }).waitFor();
      await eventually(async () => assert.deepEqual((await limitsOf(u)).map((b) => [b.scope, b.limitTokens]), [['user', 1000]]));

      await own.getByRole('button', { name: 'Remove day' }).click();
      await page.getByRole('status').filter({ hasText: 'Removed the day budget of this user.' }).waitFor();
      await eventually(async () => assert.deepEqual((await limitsOf(u)).map((b) => b.scope), ['default']));
      await defaults.getByRole('button', { name: 'Remove day' }).click();
      await eventually(async () => assert.deepEqual(await limitsOf(u), []));
    });
  });

  test('requests by route and storage by user each show what the API counted', async (tc) => {
    const u = await createUser(t);
    const c = await t.api('POST', '/v1/conversations', { token: u.accessToken, body: { title: 'Storage counts this title' } });
    assert.equal(c.status, 201);
    await inBrowser(tc, browser, async ({ page }) => {
      await signIn(page, admin, '#/admin/requests');
      await page.getByRole('heading', { name: 'Admin: Requests' }).waitFor();
      await eventually(async () => {
        await page.getByRole('button', { name: 'Show' }).click();
        await page.getByRole('table', { name: 'Requests' }).getByText('POST /v1/conversations', { exact: true }).waitFor({ timeout: 1000 });
      });
      await page.getByRole('navigation', { name: 'Admin sections' }).getByRole('link', { name: 'Storage' }).click();
      await page.getByRole('heading', { name: 'Admin: Storage' }).waitFor();
      const row = page.getByRole('table', { name: 'Storage' }).getByRole('row').filter({ has: page.locator(`code[title="${u.id}"]`) });
      await row.getByText(/conversations: 1 ·/).waitFor();
    });
  });

  test('a non-admin sees no Admin entry, and #/admin refuses plainly', async (tc) => {
    const u = await createUser(t);
    await inBrowser(tc, browser, async ({ page }) => {
      await signIn(page, u);
      assert.equal(await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Admin' }).count(), 0);
      await page.goto(`${t.url}/#/admin/users`);
      await page.getByRole('alert').filter({ hasText: 'for administrators' }).waitFor();
      assert.equal(await page.getByRole('table').count(), 0);
    });
  });

  test('on a phone (390×844): the users table scrolls inside the page, the sections stay reachable', async (tc) => {
    await inBrowser(
      tc,
      browser,
      async ({ page }) => {
        await signIn(page, admin, '#/admin/users');
        await page.getByRole('cell', { name: admin.email, exact: true }).waitFor();
        const overflow = Number(await page.evaluate('document.documentElement.scrollWidth - document.documentElement.clientWidth'));
        assert.ok(overflow <= 0, `the page scrolls sideways by ${overflow}px`);
        await page.getByRole('navigation', { name: 'Admin sections' }).getByRole('link', { name: 'Health' }).click();
        await page.getByRole('row').filter({ hasText: 'database' }).waitFor();
      },
      { viewport: { width: 390, height: 844 } },
    );
  });
});
