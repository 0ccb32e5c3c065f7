import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';

/** Debian's Chromium (`.ci/run` installs the `chromium` package). */
export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

const ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--disable-dev-shm-usage'];

/** How many of a page's last requests a failure's message lists. */
const REQUESTS_KEPT = 40;

/** Where failing tests leave their screenshots. */
export const SCREENSHOTS = join(process.cwd(), 'test-results', 'screenshots');

export interface BrowserSession {
  browser: Browser;
  /** A fresh context (its own cookies) and page, watched for breakage. */
  open(t: TestContext, opts?: OpenOpts): Promise<WatchedPage>;
  close(): Promise<void>;
}

export interface OpenOpts {
  viewport?: { width: number; height: number };
  colorScheme?: 'light' | 'dark';
  /** Breakage the test provokes on purpose (a 502 from a server it made refuse): what matches one of these is not a broken page. */
  expected?: RegExp[];
}

export interface WatchedPage {
  page: Page;
  context: BrowserContext;
  /** What broke so far: console errors, uncaught exceptions, failed requests, 5xx answers. */
  problems: string[];
  /** The page's last requests with their answers' statuses, oldest first: what a failure's message shows. */
  requests: string[];
  /** Fails the test if anything broke; saves a screenshot when the test failed. Call at the end of each test. */
  finish(): Promise<void>;
}

/**
 * Chromium through Playwright with a fresh user-data-dir. Each page is
 * watched: a console error, an uncaught exception, a request that failed on
 * the network or a 5xx answer counts as a broken page. A 4xx is an answer the
 * console handles (signed out, a validation message), and Chromium's own
 * console note for it is not counted.
 */
export async function startBrowser(): Promise<BrowserSession> {
  // Playwright gives each launch a fresh user-data-dir of its own, removed on close.
  const real = await chromium.launch({ executablePath: CHROMIUM, args: ARGS, headless: true });
  return {
    browser: real,
    async open(t, opts = {}) {
      const context = await real.newContext({ viewport: opts.viewport ?? { width: 1280, height: 800 }, colorScheme: opts.colorScheme ?? 'light' });
      const page = await context.newPage();
      const problems: string[] = [];
      page.on('console', (m) => {
        if (m.type() !== 'error') return;
        if (/^Failed to load resource: the server responded with a status of 4\d\d/.test(m.text())) return;
        problems.push(`console: ${m.text()}`);
      });
      page.on('pageerror', (err) => problems.push(`exception: ${err.message}`));
      page.on('requestfailed', (r) => {
        const why = r.failure()?.errorText ?? '';
        // Streams the console stops itself (a reload, an abort) are not failures.
        if (why.includes('ERR_ABORTED')) return;
        problems.push(`request failed: ${r.method()} ${r.url()} ${why}`);
      });
      const requests: string[] = [];
      const note = (line: string) => requests.push(line) > REQUESTS_KEPT && requests.shift();
      const path = (url: string) => new URL(url).pathname;
      page.on('request', (r) => note(`sent ${r.method()} ${path(r.url())}`));
      page.on('response', (r) => note(`${r.status()} ${r.request().method()} ${path(r.url())}`));
      page.on('requestfailed', (r) => note(`failed ${r.method()} ${path(r.url())}: ${r.failure()?.errorText ?? ''}`));
      page.on('response', (r) => {
        if (r.status() >= 500) problems.push(`${r.status()} from ${r.request().method()} ${r.url()}`);
      });
      return {
        page,
        context,
        problems,
        requests,
        async finish() {
          try {
            const broken = problems.filter((p) => !opts.expected?.some((re) => re.test(p)));
            if (broken.length) throw new Error(`the page broke:\n${broken.join('\n')}`);
          } catch (err) {
            await shoot(page, t.name);
            throw err;
          } finally {
            await context.close();
          }
        },
      };
    },
    async close() {
      await real.close();
    },
  };
}

/** A screenshot under test-results/screenshots, named after the test. */
export async function shoot(page: Page, name: string): Promise<string> {
  await mkdir(SCREENSHOTS, { recursive: true });
  const file = join(SCREENSHOTS, `${name.replace(/[^a-z0-9]+/gi, '-').slice(0, 80)}.png`);
  await page.screenshot({ path: file, fullPage: true }).catch(() => {});
  return file;
}

/**
 * Runs a browser test body, saving a screenshot when it throws: the page's
 * state at the failure is what explains it.
 */
export async function inBrowser(t: TestContext, session: BrowserSession, body: (w: WatchedPage) => Promise<void>, opts?: Parameters<BrowserSession['open']>[1]) {
  const w = await session.open(t, opts);
  try {
    await body(w);
  } catch (err) {
    await shoot(w.page, t.name);
    // CI keeps no screenshots: the message carries what the page showed and what it asked the server.
    const text = await w.page.locator('body').innerText({ timeout: 2000 }).catch(() => '');
    if (err instanceof Error) {
      const seen = [`the page showed: ${JSON.stringify(text.slice(0, 1500))}`, `its last requests:\n  ${w.requests.join('\n  ')}`, ...(w.problems.length ? [`what broke: ${w.problems.join('; ')}`] : [])];
      err.message += `\n${seen.join('\n')}`;
      if (err.stack) err.stack += `\n${seen.join('\n')}`;
    }
    await w.context.close().catch(() => {});
    throw err;
  }
  await w.finish();
}
