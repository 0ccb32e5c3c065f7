import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import type { Page } from 'playwright-core';
import { startApp, type TestApp } from '../../support/app.ts';
import { inBrowser, startBrowser, type BrowserSession } from '../../support/browser.ts';
import { eventually } from '../../support/eventually.ts';
import { createUser, type TestUser } from '../../support/factories.ts';
import { startFakeOpenAI, type FakeOpenAI } from '../../support/fake-openai.ts';

const run = promisify(execFile);

/** The real `curl` binary: a client outside the browser, as a script holding the key would be. */
async function curl(url: string, key: string, body?: unknown): Promise<number> {
  const args = ['-s', '-o', '/dev/null', '-w', '%{http_code}', '-H', `Authorization: Bearer ${key}`];
  if (body !== undefined) args.push('-H', 'content-type: application/json', '--data', JSON.stringify(body));
  const { stdout } = await run('curl', [...args, url]);
  return Number(stdout);
}

/** Signs in by the API in cookie mode, in the page's own cookie jar: the form is tested by chat.test.ts. */
async function signIn(page: Page, t: TestApp, user: TestUser) {
  const res = await page.request.post(`${t.url}/v1/auth/login`, { data: { email: user.email, password: user.password, cookie: true } });
  assert.equal(res.status(), 200);
}

// The console is a client of the public API like any other: one backend is enough here.
describe('console: playground, API keys and usage in a real browser', () => {
  let t: TestApp;
  let openai: FakeOpenAI;
  let browser: BrowserSession;
  before(async () => {
    openai = await startFakeOpenAI({ models: ['gpt-4o-mini', 'gpt-4o'] });
    t = await startApp({ env: { ...openai.env, DEFAULT_MODEL: 'openai:gpt-4o-mini', AI_RETRIES: '0', USAGE_FLUSH_INTERVAL_MS: '50' } });
    browser = await startBrowser();
  });
  after(async () => {
    await browser.close();
    await t.close();
    await openai.close();
  });

  test('compare two models side by side, then save the system prompt to a project', async (tc) => {
    const user = await createUser(t);
    const project = await t.api('POST', '/v1/projects', { token: user.accessToken, body: { name: 'Support bot' } });
    assert.equal(project.status, 201);
    await inBrowser(tc, browser, async ({ page }) => {
      await signIn(page, t, user);
      await page.goto(`${t.url}/#/playground`);
      await page.getByRole('heading', { name: 'Playground' }).waitFor();
      await page.getByLabel('Model 1').selectOption('openai:gpt-4o-mini');
      await page.getByLabel('Model 2').selectOption('openai:gpt-4o');
      await page.getByLabel('System prompt').fill('You answer in one short line.');
      await page.getByLabel('User message').fill('Say hello');
      await page.getByLabel('Temperature').fill('0.3');
      await page.getByLabel('Max tokens').fill('64');

      openai.script({ chunks: ['Hello ', 'there.'], delayMs: 20 }, { chunks: ['Hi ', 'again.'], delayMs: 20 });
      const before = openai.requests.length;
      await page.getByRole('button', { name: 'Run' }).click();

      const results = page.getByRole('region', { name: 'Answers' });
      for (const model of ['openai:gpt-4o-mini', 'openai:gpt-4o']) {
        const card = results.getByRole('article', { name: model, exact: true });
        await results.locator(`article[data-model="${model}"][aria-busy="false"]`).waitFor();
        assert.match(await card.locator('.pg-answer').innerText(), /^(Hello there\.|Hi again\.)$/);
        const stats = card.getByRole('definition');
        const [ttft, total, tokens, cost] = await stats.allInnerTexts();
        assert.match(ttft!, /^\d+ ms$|^\d+\.\d\d s$/);
        assert.match(total!, /^\d+ ms$|^\d+\.\d\d s$/);
        assert.match(tokens!, /^\d+ in · 2 out$/);
        // Priced from the catalog: gpt-4o costs more than gpt-4o-mini for the same tokens.
        assert.match(cost!, /^\$0\.\d+$/);
      }
      // Both went upstream at once, each with the form's parameters.
      const sent = openai.requests.slice(before).filter((r) => r.path === '/v1/chat/completions');
      assert.deepEqual(sent.map((r) => r.body.model).sort(), ['gpt-4o', 'gpt-4o-mini']);
      for (const r of sent) {
        assert.equal(r.body.temperature, 0.3);
        assert.equal(r.body.max_tokens ?? r.body.max_completion_tokens, 64);
        assert.deepEqual(r.body.messages[0], { role: 'system', content: 'You answer in one short line.' });
      }
      const mini = await results.getByRole('article', { name: 'openai:gpt-4o-mini', exact: true }).getByRole('definition').nth(3).innerText();
      const full = await results.getByRole('article', { name: 'openai:gpt-4o', exact: true }).getByRole('definition').nth(3).innerText();
      assert.ok(Number(full.slice(1)) > Number(mini.slice(1)), `${full} > ${mini}`);

      // Stop: both streams end where they were, and the gateway hangs up upstream too.
      const slow = { chunks: Array.from({ length: 40 }, (_, i) => `w${i} `), delayMs: 100 };
      openai.script(slow, slow);
      const beforeStop = openai.requests.length;
      await page.getByRole('button', { name: 'Run' }).click();
      await results.getByText(/w1 /).first().waitFor();
      await page.getByRole('button', { name: 'Stop' }).click();
      await eventually(async () => assert.equal(await results.getByText('Stopped.').count(), 2));
      await eventually(() => assert.ok(openai.requests.slice(beforeStop).every((r) => r.aborted)), 10_000);

      // A third model slot, up to four; then back to two.
      await page.getByRole('button', { name: 'Add a model' }).click();
      await page.getByRole('combobox', { name: /^Model 3/ }).waitFor();
      await page.getByRole('button', { name: 'Remove model 3' }).click();
      assert.equal(await page.getByRole('combobox', { name: /^Model 3/ }).count(), 0);

      await page.getByRole('combobox', { name: /^Project/ }).selectOption({ label: 'Support bot' });
      await page.getByLabel('Prompt name').fill('Short answers');
      await page.getByLabel("Make it the project's active prompt").check();
      await page.getByRole('button', { name: 'Save prompt' }).click();
      await page.getByText('Saved "Short answers" to Support bot.').waitFor();

      // The same name again: the API's 409 shows as a message, nothing breaks.
      await page.getByRole('button', { name: 'Save prompt' }).click();
      await page.getByRole('alert').waitFor();

      // Over budget: each column shows the gateway's refusal (402, OpenAI-shaped), and nothing goes upstream.
      const admin = await createUser(t, { admin: true });
      const budget = await t.api('PUT', '/v1/admin/budgets', { token: admin.accessToken, body: { userId: user.id, period: 'total', limitTokens: 1 } });
      assert.equal(budget.status, 200);
      const upstream = openai.requests.length;
      await page.getByRole('button', { name: 'Run' }).click();
      for (const model of ['openai:gpt-4o-mini', 'openai:gpt-4o']) {
        await results.getByRole('article', { name: model, exact: true }).getByRole('alert').filter({ hasText: /budget/i }).waitFor();
      }
      assert.equal(openai.requests.length, upstream);
    });
    const prompts = await t.api('GET', `/v1/projects/${project.body.id}/prompts`, { token: user.accessToken });
    assert.equal(prompts.status, 200);
    const saved = prompts.body.data.find((p: { name: string }) => p.name === 'Short answers');
    assert.equal(saved.content, 'You answer in one short line.');
    const shown = await t.api('GET', `/v1/projects/${project.body.id}`, { token: user.accessToken });
    assert.equal(shown.body.activePromptId, saved.id);
  });

  test('create an API key on a phone-sized screen, use it with curl, revoke it and curl gets 401', async (tc) => {
    const user = await createUser(t);
    await inBrowser(
      tc,
      browser,
      async ({ page }) => {
        await signIn(page, t, user);
        await page.goto(`${t.url}/#/keys`);
        await page.getByRole('heading', { name: 'API keys', level: 1 }).waitFor();
        assert.equal(await page.getByRole('link', { name: 'API keys' }).getAttribute('aria-current'), 'page');
        await page.getByText('No keys yet.').waitFor();

        // Submitting without a name is stopped by the form itself.
        await page.getByRole('button', { name: 'Create key' }).click();
        assert.equal(await page.getByRole('heading', { name: /created/ }).count(), 0);

        // An expiry in the past: the API's 400 shows by the form, and no key is made.
        await page.getByLabel('Name').fill('too late');
        await page.getByLabel('Expires on').fill('2020-01-01');
        await page.getByRole('button', { name: 'Create key' }).click();
        await page.getByRole('alert').filter({ hasText: 'expiresAt must be in the future' }).waitFor();
        await page.getByLabel('Expires on').fill('');

        await page.getByLabel('Name').fill('ci script');
        await page.getByLabel('chat', { exact: true }).check();
        await page.getByLabel('models:read').check();
        await page.getByRole('button', { name: 'Create key' }).click();
        const shown = page.getByLabel('Your new API key');
        await shown.waitFor();
        const key = await shown.inputValue();
        assert.match(key, /^pk_/);

        const row = page.getByRole('row', { name: /ci script/ });
        await row.waitFor();
        assert.match(await row.innerText(), new RegExp(`…${key.slice(-4)}`));
        assert.ok(!(await row.innerText()).includes(key), 'the list never shows the secret');

        assert.equal(await curl(`${t.url}/v1/ai/models`, key), 200);
        assert.equal(await curl(`${t.url}/v1/chat/completions`, key, { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] }), 200);
        // Scoped to chat and models: not usage.
        assert.equal(await curl(`${t.url}/v1/usage`, key), 403);

        // Once dismissed, the secret is gone from the page.
        await page.getByRole('button', { name: 'Done, I saved it' }).click();
        assert.equal(await page.getByLabel('Your new API key').count(), 0);

        await row.getByRole('button', { name: 'Revoke ci script' }).click();
        await row.getByRole('button', { name: 'Yes, revoke ci script' }).click();
        await page.getByText('No keys yet.').waitFor();
        assert.equal(await curl(`${t.url}/v1/ai/models`, key), 401);
      },
      { viewport: { width: 390, height: 844 } },
    );
  });

  test('the usage page grows after a call; the chart legend shows the hovered day; budgets show what is left', async (tc) => {
    const user = await createUser(t);
    const key = await t.api('POST', '/v1/api-keys', { token: user.accessToken, body: { name: 'reporting' } });
    assert.equal(key.status, 201);
    await inBrowser(
      tc,
      browser,
      async ({ page }) => {
        await signIn(page, t, user);
        await page.goto(`${t.url}/#/usage`);
        const totalTokens = page.locator('.usage-totals div', { hasText: 'Total tokens' }).getByRole('definition');
        await totalTokens.waitFor();
        assert.equal(await totalTokens.innerText(), '0');
        await page.getByLabel('Files:').waitFor();

        const call = await t.api('POST', '/v1/chat/completions', { token: key.body.key, body: { model: 'openai:gpt-4o', messages: [{ role: 'user', content: 'count me' }] } });
        assert.equal(call.status, 200);
        const expected = call.body.usage.total_tokens;

        await eventually(async () => {
          await page.getByRole('button', { name: 'Refresh' }).click();
          await page.locator('.usage-totals').waitFor();
          assert.equal(await totalTokens.innerText(), String(expected));
        }, 10_000);
        await page.getByRole('table', { name: 'Usage by model' }).getByRole('row', { name: /openai:gpt-4o/ }).waitFor();

        // By API key: the key's name, not its id.
        await page.getByLabel('Break down by').selectOption('api_key');
        await page.getByRole('table', { name: 'Usage by api key' }).getByRole('row', { name: /reporting/ }).waitFor();

        // Hovering today's point puts its numbers in the legend, in the page's text colour.
        const chart = page.getByRole('figure', { name: 'Tokens per day by api key' });
        // A new breakdown destroys the chart and draws it again once uPlot is
        // loaded, so the plot found first may be gone when measured: retry.
        const over = chart.locator('.u-over');
        const value = chart.locator('.u-legend .u-series').nth(1).locator('.u-value');
        await eventually(async () => {
          const box = await over.boundingBox();
          assert.ok(box, 'the chart is drawn');
          await page.mouse.move(box.x + box.width - 2, box.y + box.height / 2);
          assert.equal(await value.innerText(), String(expected));
        });
        const colours = await value.evaluate((el) => {
          const w = globalThis as any;
          return [w.getComputedStyle(el).color, w.getComputedStyle(w.document.body).color];
        });
        assert.equal(colours[0], colours[1]);

        // A budget for the key, and what is left of it.
        await page.getByLabel('Budget for').selectOption({ label: 'Key reporting' });
        await page.getByLabel('Period').selectOption('month');
        await page.getByLabel('Limit in tokens').fill('100000');
        await page.getByRole('button', { name: 'Set budget' }).click();
        const budget = page.getByRole('row', { name: /Key reporting/ });
        await budget.waitFor();
        assert.match(await budget.innerText(), new RegExp(`${(100000 - expected).toLocaleString('en-US')} tokens`));

        // Neither limit: a message, no request.
        await page.getByRole('button', { name: 'Set budget' }).click();
        await page.getByText('Give a limit in USD, in tokens, or both.').waitFor();
      },
      { colorScheme: 'dark' },
    );
  });
});
