import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { startApp, type TestApp } from '../../support/app.ts';
import { inBrowser, startBrowser, type BrowserSession } from '../../support/browser.ts';
import { createUser } from '../../support/factories.ts';
import { startFakeOpenAI, type FakeOpenAI } from '../../support/fake-openai.ts';

// The console is a client of the public API like any other: one backend is enough here.
describe('console: a conversation shared by link', () => {
  let t: TestApp;
  let openai: FakeOpenAI;
  let browser: BrowserSession;
  before(async () => {
    openai = await startFakeOpenAI();
    t = await startApp({ env: { ...openai.env, DEFAULT_MODEL: 'openai:gpt-4o-mini', AI_RETRIES: '0' } });
    browser = await startBrowser();
  });
  after(async () => {
    await browser.close();
    await t.close();
    await openai.close();
  });

  test('a link made on the chat page opens the conversation read-only for someone signed out; revoked, it says so', async (tc) => {
    const u = await createUser(t);
    const api = (method: string, path: string, body?: unknown) => t.api(method, path, { token: u.accessToken, body });
    const c = await api('POST', '/v1/conversations', { title: 'Bread' });
    assert.equal(c.status, 201, c.text);
    openai.script({ reply: 'Flour, water and **salt**.' });
    assert.equal((await api('POST', `/v1/conversations/${c.body.id}/messages`, { content: 'What goes in bread?' })).status, 201);

    let address = '';
    await inBrowser(tc, browser, async ({ page }) => {
      const res = await page.request.post(`${t.url}/v1/auth/login`, { data: { email: u.email, password: u.password, cookie: true } });
      assert.equal(res.status(), 200);
      await page.goto(`${t.url}/#/chat/${c.body.id}`);
      await page.getByRole('heading', { name: 'Bread' }).waitFor();
      await page.getByRole('button', { name: 'Share' }).click();
      const form = page.getByRole('form', { name: 'New share link' });
      await form.getByLabel('Expires').selectOption({ label: 'In a week' });
      await form.getByRole('button', { name: 'Create link' }).click();
      address = await page.getByLabel('Link address').inputValue();
      assert.match(address, new RegExp(`^${t.url}/#/shared/conversation/pcs_.+`));
      const links = (await api('GET', `/v1/conversations/${c.body.id}/shares`)).body.data;
      assert.equal(links.length, 1);
      assert.ok(address.endsWith(links[0].last4), 'the list names the link by its last four characters');
      assert.ok(Date.parse(links[0].expiresAt) - Date.now() > 6 * 24 * 3600_000);
      await page.getByRole('button', { name: `Revoke link …${links[0].last4}` }).waitFor();
    });

    // Later messages stay out of the snapshot.
    openai.script({ reply: 'Rye works too.' });
    assert.equal((await api('POST', `/v1/conversations/${c.body.id}/messages`, { content: 'And rye?' })).status, 201);

    await inBrowser(tc, browser, async ({ page }) => {
      // Nobody signed in: the conversation, read-only.
      await page.goto(address);
      await page.getByRole('heading', { level: 1, name: 'Bread' }).waitFor();
      await page.getByText('What goes in bread?').waitFor();
      await page.locator('.msg.assistant strong', { hasText: 'salt' }).waitFor();
      assert.equal(await page.getByText('Rye works too.').count(), 0, 'a later message is not shown');
      assert.equal(await page.getByLabel('Message').count(), 0, 'no composer');
      assert.equal(await page.getByRole('button', { name: 'Share' }).count(), 0);

      const link = (await api('GET', `/v1/conversations/${c.body.id}/shares`)).body.data[0];
      assert.equal((await api('DELETE', `/v1/conversations/${c.body.id}/shares/${link.id}`)).status, 204);
      await page.reload();
      await page.getByRole('alert').filter({ hasText: 'This link was revoked' }).waitFor();
      // A token never issued, or a mangled address (a malformed escape): an unknown link, not a page that fails to draw.
      for (const token of [`pcs_${'x'.repeat(43)}`, '%E0']) {
        await page.goto(`${t.url}/#/shared/conversation/${token}`);
        await page.getByRole('alert').filter({ hasText: 'does not open any conversation' }).waitFor();
        assert.equal(await page.getByRole('heading', { level: 1 }).innerText(), 'Shared conversation');
      }
    });
  });
});
