import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { startApp, type TestApp } from '../../support/app.ts';
import { inBrowser, startBrowser, type BrowserSession } from '../../support/browser.ts';
import { startFakeOpenAI, type FakeOpenAI } from '../../support/fake-openai.ts';

// The console is a client of the public API like any other: one backend is enough here.
describe('console: sign up and chat in a real browser', () => {
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

  test('sign up, send a message and watch the answer stream in; reload mid-answer and it resumes', async (tc) => {
    await inBrowser(tc, browser, async ({ page }) => {
      await page.goto(t.url);
      await page.getByRole('button', { name: 'Create an account' }).click();
      await page.getByLabel('Email').fill(`console-${Date.now()}@example.com`);
      await page.getByLabel('Password').fill('a long enough password');
      await page.getByRole('button', { name: 'Create account' }).click();
      await page.getByRole('button', { name: 'New chat' }).click();

      openai.script({ chunks: ['Hello ', 'from ', 'the **fake**.'], delayMs: 30 });
      await page.getByLabel('Message').fill('Hi there');
      await page.getByLabel('Message').press('Enter');
      await page.locator('.msg.assistant strong', { hasText: 'fake' }).waitFor();
      assert.equal(await page.locator('.msg.user').last().innerText(), 'Hi there');
      assert.match(await page.locator('.msg.assistant').last().innerText(), /Hello from the fake\./);

      // A slow answer: reload while it streams; the page follows it from the stored events to the end.
      openai.script({ chunks: Array.from({ length: 12 }, (_, i) => `part${i} `), delayMs: 150 });
      await page.getByLabel('Message').fill('Tell me slowly');
      await page.getByLabel('Message').press('Enter');
      await page.locator('.msg.assistant', { hasText: 'part2' }).waitFor();
      await page.reload();
      await page.locator('.msg.assistant', { hasText: 'part11' }).waitFor({ timeout: 15_000 });
      await page.locator('.msg.assistant[data-status="complete"]', { hasText: 'part0 part1' }).waitFor();
    });
  });
});
