import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { startApp, type TestApp } from '../../support/app.ts';
import { inBrowser, startBrowser, type BrowserSession } from '../../support/browser.ts';

/** The console's first load: what it costs to download, and how soon it answers. Reported, not asserted as a timing. */
describe('console: first load', () => {
  let t: TestApp;
  let browser: BrowserSession;
  before(async () => {
    t = await startApp({ worker: false });
    browser = await startBrowser();
  });
  after(async () => {
    await browser.close();
    await t.close();
  });

  test('the JavaScript of the first load stays under 300 KB compressed; time to an interactive sign-in form is reported', async (tc) => {
    await inBrowser(tc, browser, async ({ page }) => {
      const scripts = new Map<string, number>();
      page.on('response', async (r) => {
        if (!r.url().endsWith('.js')) return;
        const sizes = await r.request().sizes().catch(() => undefined);
        scripts.set(r.url(), sizes?.responseBodySize ?? 0);
        assert.equal(r.headers()['content-encoding'], 'gzip', `${r.url()} is sent compressed`);
      });
      const started = Date.now();
      await page.goto(t.url);
      const email = page.getByLabel('Email');
      await email.waitFor();
      await email.fill('a@example.com');
      const interactiveMs = Date.now() - started;
      await page.waitForLoadState('networkidle');
      const total = [...scripts.values()].reduce((a, b) => a + b, 0);
      tc.diagnostic(`first load: ${scripts.size} scripts, ${(total / 1024).toFixed(1)} KB compressed; sign-in form usable after ${interactiveMs} ms (embedded, this machine)`);
      assert.ok(scripts.size >= 3, 'the app and its libraries were loaded');
      assert.ok(total > 0 && total < 300 * 1024, `${total} bytes of JavaScript`);

      // A second load revalidates by ETag: nothing is downloaded again.
      const again = await page.request.get(`${t.url}/console/main.js`, { headers: { 'if-none-match': (await page.request.get(`${t.url}/console/main.js`)).headers().etag! } });
      assert.equal(again.status(), 304);
      const missing = await page.request.get(`${t.url}/console/nope.js`);
      assert.equal(missing.status(), 404);
      assert.match(missing.headers()['content-type']!, /^application\/problem\+json/);
      assert.equal((await missing.json()).code, 'console_file_not_found');
      // The page names the whole static module graph up front, so the browser fetches it in one round, not one level of imports at a time.
      const home = await page.request.get(t.url);
      const preloaded = [...(await home.text()).matchAll(/<link rel="modulepreload" href="([^"]+)">/g)].map((m) => `${t.url}${m[1]}`);
      assert.ok(preloaded.some((u) => u.endsWith('/console/vendor/preact.js')) && preloaded.some((u) => u.endsWith('/console/pages/sign-in.js')), preloaded.join(' '));
      assert.ok(preloaded.every((u) => scripts.has(u)), 'every preloaded module is one the first load uses');
      assert.deepEqual([...scripts.keys()].filter((u) => !preloaded.includes(u) && !u.endsWith('/console/main.js')), [], 'nothing the first load needs is left to be discovered');
      const csp = home.headers()['content-security-policy']!;
      assert.match(csp, /script-src 'self' 'sha256-/);
      assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval/);
    });
  });

  test('CONSOLE_ENABLED=false leaves / to the API page and serves no console files', async () => {
    const off = await startApp({ worker: false, env: { CONSOLE_ENABLED: 'false' } });
    try {
      assert.match(await (await fetch(`${off.url}/`)).text(), /console is turned off/);
      assert.equal((await fetch(`${off.url}/console/main.js`)).status, 404);
    } finally {
      await off.close();
    }
  });
});
