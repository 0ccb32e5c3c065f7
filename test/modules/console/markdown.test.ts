import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { Locator, Page } from 'playwright-core';
import { startApp, type TestApp } from '../../support/app.ts';
import { inBrowser, startBrowser, type BrowserSession } from '../../support/browser.ts';
import { eventually } from '../../support/eventually.ts';
import { createUser, type TestUser } from '../../support/factories.ts';
import { startFakeOpenAI, type FakeOpenAI } from '../../support/fake-openai.ts';
import { PNG, uploadFile } from '../../support/files.ts';

/** An image the page loaded and decoded. */
const loaded = (image: Locator) => eventually(async () => assert.ok(await image.evaluate((img: any) => img.complete && img.naturalWidth > 0), 'the image loaded'));

// Markdown comes from people other than its reader (a model steered by a prompt
// injection, a document's author): its images are GETs sent with the reader's
// cookies the moment it renders, so only Parley's file images may load.
describe('console: images in Markdown load only Parley files', () => {
  let t: TestApp;
  let openai: FakeOpenAI;
  let browser: BrowserSession;
  let reader: TestUser;
  let author: TestUser;
  /** The paths of the requests the server received, as they came. */
  const requests: string[] = [];
  const exports = () => requests.filter((path) => path.startsWith('/v1/users/me/export'));

  const signIn = async (page: Page, user: TestUser) => {
    const res = await page.request.post(`${t.url}/v1/auth/login`, { data: { email: user.email, password: user.password, cookie: true } });
    assert.equal(res.status(), 200, await res.text());
  };

  before(async () => {
    openai = await startFakeOpenAI();
    t = await startApp({ env: { ...openai.env, DEFAULT_MODEL: 'openai:gpt-4o-mini', AI_RETRIES: '0' } });
    t.app.server.on('request', (req) => requests.push(req.url!));
    browser = await startBrowser();
    reader = await createUser(t, { name: 'Reader' });
    author = await createUser(t, { name: 'Author' });
  });
  after(async () => {
    await browser.close();
    await t.close();
    await openai.close();
  });

  test('a streamed answer and a shared document: the export is never requested, file images load', async (tc) => {
    const own = await uploadFile(t, reader, 'dot.png', PNG);
    await inBrowser(tc, browser, async ({ page }) => {
      await signIn(page, reader);
      const c = await t.api('POST', '/v1/conversations', { token: reader.accessToken, body: { title: 'Scripted' } });
      await page.goto(`${t.url}/#/chat/${c.body.id}`);
      await page.getByRole('heading', { name: 'Scripted' }).waitFor();
      // The page renders the answer again on each chunk: an image it kept would be requested each time.
      const words = Array.from({ length: 20 }, (_, i) => `word${i} `);
      openai.script({ chunks: ['Sure. ', '![](/v1/users/me/export?n=1) ', `![dot](/v1/files/${own.id}/content) `, ...words], delayMs: 30 });
      await page.getByLabel('Message').fill('Show me');
      await page.getByRole('button', { name: 'Send' }).click();
      const answer = page.locator('.msg.assistant[data-status="complete"]');
      await answer.waitFor();
      await loaded(answer.getByRole('img', { name: 'dot' }));
      assert.deepEqual(exports(), []);
      assert.equal(await answer.locator('.md img:not([src])').count(), 1, 'the export image is left without a source');
    });

    // The author's own file, by a signed link (its path: the console is served from PUBLIC_URL's origin, the test from another).
    const file = await uploadFile(t, author, 'dot.png', PNG);
    const signed = new URL((await t.api('POST', `/v1/files/${file.id}/url`, { token: author.accessToken, body: {} })).body.url);
    const body = ['# Plan', '![](/v1/users/me/export?n=1)', `![](/v1/files/${file.id}/../../users/me/export)`, '![](/console/icon.svg)', `![chart](${signed.pathname}${signed.search})`, `![pixel](data:image/png;base64,${PNG.toString('base64')})`].join('\n\n');
    const doc = (await t.api('POST', '/v1/documents', { token: author.accessToken, body: { title: 'Quarterly plan', body } })).body;
    const link = (await t.api('POST', `/v1/documents/${doc.id}/links`, { token: author.accessToken, body: { role: 'viewer' } })).body;
    await inBrowser(tc, browser, async ({ page }) => {
      await signIn(page, reader);
      await page.goto(`${t.url}/#/documents/shared/${encodeURIComponent(link.token)}`);
      await page.getByRole('heading', { name: 'Quarterly plan' }).waitFor();
      await loaded(page.locator('.md').getByRole('img', { name: 'chart' }));
      await loaded(page.locator('.md').getByRole('img', { name: 'pixel' }));
      assert.deepEqual(exports(), []);
      assert.equal(await page.locator('.md img:not([src])').count(), 3, 'every other image is left without a source');
    });
  });

  test('links in an answer and in a document open in a new tab, without an opener or a referrer', async (tc) => {
    const links = '[the guide](https://example.com/guide) · [mail](mailto:ops@example.com) · [a script](javascript:alert(1)) · [notes](#/documents)';
    const linksOf = (page: Page) =>
      page.locator('.md a').evaluateAll((anchors) => anchors.map((a) => ({ text: a.textContent, href: a.getAttribute('href'), target: a.getAttribute('target'), rel: a.getAttribute('rel') })));
    const expected = [
      { text: 'the guide', href: 'https://example.com/guide', target: '_blank', rel: 'noopener noreferrer' },
      { text: 'mail', href: 'mailto:ops@example.com', target: '_blank', rel: 'noopener noreferrer' },
      // No source to follow: nothing to open anywhere.
      { text: 'a script', href: null, target: null, rel: null },
      // Within the console: it stays in the tab.
      { text: 'notes', href: '#/documents', target: null, rel: null },
    ];
    await inBrowser(tc, browser, async ({ page }) => {
      await signIn(page, reader);
      const c = await t.api('POST', '/v1/conversations', { token: reader.accessToken, body: { title: 'Scripted' } });
      await page.goto(`${t.url}/#/chat/${c.body.id}`);
      await page.getByRole('heading', { name: 'Scripted' }).waitFor();
      openai.script({ reply: `Read ${links}` });
      await page.getByLabel('Message').fill('Where is the guide?');
      await page.getByRole('button', { name: 'Send' }).click();
      await page.locator('.msg.assistant[data-status="complete"]').waitFor();
      assert.deepEqual(await linksOf(page), expected);
    });
    const doc = (await t.api('POST', '/v1/documents', { token: author.accessToken, body: { title: 'Reading list', body: links } })).body;
    const link = (await t.api('POST', `/v1/documents/${doc.id}/links`, { token: author.accessToken, body: { role: 'viewer' } })).body;
    await inBrowser(tc, browser, async ({ page }) => {
      await signIn(page, reader);
      await page.goto(`${t.url}/#/documents/shared/${encodeURIComponent(link.token)}`);
      await page.getByRole('heading', { name: 'Reading list' }).waitFor();
      assert.deepEqual(await linksOf(page), expected);
    });
  });
});
