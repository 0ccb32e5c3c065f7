import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { startApp, type TestApp } from '../../support/app.ts';
import { inBrowser, startBrowser, type BrowserSession } from '../../support/browser.ts';
import { eventually } from '../../support/eventually.ts';
import { answerRequests, isTitleRequest } from '../chat/generation-fixture.ts';
import { createUser, type TestUser } from '../../support/factories.ts';
import { startFakeOpenAI, type FakeOpenAI } from '../../support/fake-openai.ts';
import { PNG as DOT_PNG, uploadFile } from '../../support/files.ts';
import type { Page } from 'playwright-core';

/** The user's text in the messages of a recorded upstream request. */
const sentTexts = (body: any): string[] =>
  (body?.messages ?? []).flatMap((m: any) => (typeof m.content === 'string' ? [m.content] : (m.content ?? []).flatMap((p: any) => (p.type === 'text' ? [p.text] : []))));

// The console is a client of the public API like any other: one backend is enough here.
describe('console: sign up and chat in a real browser', () => {
  let t: TestApp;
  let openai: FakeOpenAI;
  let browser: BrowserSession;
  before(async () => {
    openai = await startFakeOpenAI();
    // A title job runs whenever its queue gets to it: it must not take the script the next answer is waiting for.
    openai.aside(isTitleRequest, { reply: 'Named by the model' });
    t = await startApp({ env: { ...openai.env, DEFAULT_MODEL: 'openai:gpt-4o-mini', EMBEDDING_MODEL: 'openai:text-embedding-3-small', AI_RETRIES: '0' } });
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

  /** A new user signed in through a cookie login (the first test signs up through the form). */
  async function signIn(page: Page): Promise<TestUser> {
    const user = await createUser(t);
    const res = await page.request.post(`${t.url}/v1/auth/login`, { data: { email: user.email, password: user.password, cookie: true } });
    assert.equal(res.status(), 200);
    return user;
  }

  /** A conversation made through the API (titled, so no title job asks the fake model in between), opened in the page. */
  async function openConversation(page: Page, user: TestUser, body: Record<string, unknown> = {}): Promise<string> {
    const c = await t.api('POST', '/v1/conversations', { token: user.accessToken, body: { title: 'Scripted', ...body } });
    assert.equal(c.status, 201);
    await page.goto(`${t.url}/#/chat/${c.body.id}`);
    await page.getByRole('heading', { name: 'Scripted' }).waitFor();
    return c.body.id;
  }

  async function say(page: Page, text: string) {
    await page.getByLabel('Message').fill(text);
    await page.getByRole('button', { name: 'Send' }).click();
  }

  test('attach an image (file picker) and a text file (dropped): previews, and the model receives both', async (tc) => {
    await inBrowser(tc, browser, async ({ page }) => {
      await signIn(page);
      await page.goto(t.url);
      await page.getByRole('button', { name: 'New chat' }).click();
      await page.getByLabel('Attach files').setInputFiles({ name: 'dot.png', mimeType: 'image/png', buffer: DOT_PNG });
      await page.getByRole('img', { name: 'Preview of dot.png' }).waitFor();
      // A drop as the browser makes it: a DataTransfer holding a file (the page's own globals, hence the string).
      const drop = await page.evaluateHandle(`(() => {
        const dt = new DataTransfer();
        dt.items.add(new File(['the notes say hello'], 'notes.txt', { type: 'text/plain' }));
        return dt;
      })()`);
      await page.locator('form.composer').dispatchEvent('drop', { dataTransfer: drop });
      await page.getByRole('list', { name: 'Attachments' }).getByText('notes.txt').waitFor();
      await page.locator('.attachments li[data-status="uploading"]').first().waitFor({ state: 'detached' });

      await say(page, 'What is in these?');
      await page.locator('.msg.assistant[data-status="complete"]').waitFor();
      // The sent message shows the stored image (a variant the server made), loaded.
      const shown = page.locator('.msg.user').getByRole('img', { name: 'dot.png' });
      await shown.waitFor();
      await eventually(async () => assert.ok(await shown.evaluate((img: any) => img.complete && img.naturalWidth > 0)));
      assert.equal(await page.getByRole('list', { name: 'Attachments' }).count(), 0);

      const asked = answerRequests(openai).find((r) => JSON.stringify(r.body?.messages ?? []).includes('What is in these?'));
      assert.ok(asked, 'the model was asked');
      const user = asked.body.messages.findLast((m: any) => m.role === 'user');
      const image = user.content.find((p: any) => p.type === 'image_url');
      assert.ok(image, 'an image part');
      assert.equal(image.image_url.url, `data:image/png;base64,${DOT_PNG.toString('base64')}`);
      assert.match(JSON.stringify(user.content), /notes\.txt[^]*the notes say hello/);

      // An upload the server refuses (HTML named .png): the attachment says why, and the message waits until it is removed.
      await page.getByLabel('Attach files').setInputFiles({ name: 'evil.png', mimeType: 'image/png', buffer: Buffer.from('<html><script>alert(1)</script></html>') });
      const refused = page.locator('.attachments li[data-status="failed"]');
      await refused.locator('.error').waitFor();
      await say(page, 'And this one?');
      await page.getByRole('alert').getByText('An attachment could not be uploaded').waitFor();
      assert.equal(await page.getByLabel('Message').inputValue(), 'And this one?');
      await page.getByRole('button', { name: 'Remove evil.png' }).click();
      assert.equal(await refused.count(), 0);
    });
  });

  test('stop an answer: it keeps its text and says it stopped', async (tc) => {
    await inBrowser(tc, browser, async ({ page }) => {
      const user = await signIn(page);
      await openConversation(page, user);
      openai.script({ chunks: Array.from({ length: 40 }, (_, i) => `slow${i} `), delayMs: 150 });
      await say(page, 'Talk for a long time');
      await page.locator('.msg.assistant', { hasText: 'slow1' }).waitFor();
      await page.getByRole('button', { name: 'Stop' }).click();
      await page.locator('.msg.assistant[data-status="cancelled"]').waitFor();
      await page.getByText('Stopped.').waitFor();
      assert.doesNotMatch(await page.locator('.msg.assistant').innerText(), /slow39/);
      await page.getByRole('button', { name: 'Send' }).waitFor();
    });
  });

  test('a dropped connection mid-answer: the text so far stays, and the rest follows from where it broke off, without a reload', async (tc) => {
    await inBrowser(
      tc,
      browser,
      async ({ page }) => {
        let loads = 0;
        page.on('load', () => loads++);
        const user = await signIn(page);
        const id = await openConversation(page, user);
        openai.script({ chunks: Array.from({ length: 16 }, (_, i) => `drop${i} `), delayMs: 150 });
        await say(page, 'Keep talking through the outage');
        const answer = page.locator('.msg.assistant').last();
        await page.locator('.msg.assistant', { hasText: 'drop3' }).waitFor();
        // Every HTTP connection of the server closed at once (the notifications socket is upgraded, and stays).
        t.app.server.closeAllConnections();
        await page.waitForTimeout(100);
        assert.match(await answer.innerText(), /drop0 drop1 drop2 drop3/, 'the text shown is kept');
        await page.locator('.msg.assistant[data-status="complete"]', { hasText: 'drop15' }).waitFor({ timeout: 15_000 });
        const text = await answer.innerText();
        assert.match(text, new RegExp(Array.from({ length: 16 }, (_, i) => `drop${i}`).join(' ')), 'every chunk once, in order');
        assert.equal(text.match(/drop3 /g)?.length, 1);
        assert.equal(loads, 1, 'no reload');
        assert.equal(await page.getByRole('alert').count(), 0);
        const branch = await t.api('GET', `/v1/conversations/${id}/messages`, { token: user.accessToken });
        assert.equal(branch.body.data.at(-1).status, 'complete');
        await page.getByRole('button', { name: 'Send' }).waitFor();
      },
      // The stream the server hung up on fails on the network: that is the point.
      { expected: [/request failed: POST .*\/messages /, /^console: Failed to load resource: net::ERR_INCOMPLETE_CHUNKED_ENCODING$/] },
    );
  });

  test('regenerate and switch between the two answers; edit a question into a new branch; thumbs up persists', async (tc) => {
    await inBrowser(tc, browser, async ({ page }) => {
      const user = await signIn(page);
      const id = await openConversation(page, user);
      openai.script({ reply: 'Answer one.' });
      await say(page, 'First question');
      await page.locator('.msg.assistant[data-status="complete"]', { hasText: 'Answer one.' }).waitFor();

      openai.script({ reply: 'Answer two.' });
      await page.getByRole('button', { name: 'Regenerate' }).click();
      await page.locator('.msg.assistant[data-status="complete"]', { hasText: 'Answer two.' }).waitFor();
      const answerBranches = page.locator('.msg.assistant').getByRole('group', { name: 'Branches' });
      await answerBranches.getByText('2 / 2').waitFor();
      await answerBranches.getByRole('button', { name: 'Previous branch' }).click();
      await page.locator('.msg.assistant', { hasText: 'Answer one.' }).waitFor();
      await answerBranches.getByText('1 / 2').waitFor();
      await answerBranches.getByRole('button', { name: 'Next branch' }).click();
      await page.locator('.msg.assistant', { hasText: 'Answer two.' }).waitFor();

      await page.getByRole('button', { name: 'Good answer' }).click();
      await page.locator('button[aria-label="Good answer"][aria-pressed="true"]').waitFor();
      const branch = await t.api('GET', `/v1/conversations/${id}/messages`, { token: user.accessToken });
      assert.equal(branch.body.data.at(-1).feedback?.rating, 'up');

      // Edit: the new text goes under the question's parent, a sibling of the old question.
      openai.script({ reply: 'Answer to the edit.' });
      await page.getByRole('button', { name: 'Edit' }).click();
      await page.getByLabel('Edit message').fill('Edited question');
      await page.getByRole('button', { name: 'Save and send' }).click();
      await page.locator('.msg.assistant[data-status="complete"]', { hasText: 'Answer to the edit.' }).waitFor();
      const questionBranches = page.locator('.turn.user').getByRole('group', { name: 'Branches' });
      await questionBranches.getByText('2 / 2').waitFor();
      assert.equal(await page.locator('.msg.user').innerText(), 'Edited question');
      await questionBranches.getByRole('button', { name: 'Previous branch' }).click();
      await page.locator('.msg.user', { hasText: 'First question' }).waitFor();
      await page.locator('.msg.assistant', { hasText: 'Answer two.' }).waitFor();
      // Fork from this answer: a new conversation holding this branch opens; the original keeps both.
      await page.getByRole('button', { name: 'Fork' }).click();
      await page.waitForURL((url) => url.hash.startsWith('#/chat/') && !url.hash.endsWith(id));
      const forkId = new URL(page.url()).hash.split('/').pop()!;
      await page.locator('.msg.assistant', { hasText: 'Answer two.' }).waitFor();
      assert.equal(await page.locator('.msg.user').innerText(), 'First question');
      assert.equal(await page.locator('.turn.user').getByRole('group', { name: 'Branches' }).count(), 0, 'only the branch forked from');
      await page.locator(`aside a[href="#/chat/${forkId}"]`).waitFor();
      const forked = await t.api('GET', `/v1/conversations/${forkId}/messages`, { token: user.accessToken });
      assert.deepEqual(forked.body.data.map((m: any) => m.content[0].text), ['First question', 'Answer two.']);
    });
  });

  test('a tool that needs approval: the call shows Approve/Deny, approving (after a reload) or denying carries the answer on', async (tc) => {
    await inBrowser(tc, browser, async ({ page }) => {
      const user = await signIn(page);
      const project = await t.api('POST', '/v1/projects', { token: user.accessToken, body: { name: 'Clockwork', tools: ['current_time'], toolApprovals: ['current_time'] } });
      assert.equal(project.status, 201);
      const id = await openConversation(page, user);
      await page.getByLabel('Project').selectOption({ label: 'Clockwork' });
      await eventually(async () => assert.equal((await t.api('GET', `/v1/conversations/${id}`, { token: user.accessToken })).body.projectId, project.body.id));

      openai.script({ toolCalls: [{ name: 'current_time', arguments: '{}' }] }, { reply: 'It is tea time.' });
      await say(page, 'What time is it?');
      const approve = page.getByRole('button', { name: 'Approve current_time' });
      await approve.waitFor();
      await page.getByRole('button', { name: 'Deny current_time' }).waitFor();
      // A reload while it waits: the paused answer and its pending call are still there.
      await page.reload();
      await approve.click();
      await page.locator('.msg.assistant[data-status="complete"]', { hasText: 'It is tea time.' }).waitFor();
      await page.locator('.tool-call[data-status="ok"]', { hasText: 'current_time' }).waitFor();
      assert.equal(await approve.count(), 0);
      const last = openai.requests.at(-1)!;
      assert.ok(last.body.messages.some((m: any) => m.role === 'tool'), 'the model got the tool result');

      // Denying, without a reload this time: the stream that paused carries the answer on.
      openai.script({ toolCalls: [{ name: 'current_time', arguments: '{}' }] }, { reply: 'Then I cannot tell.' });
      await say(page, 'And now?');
      await page.getByRole('button', { name: 'Deny current_time' }).click();
      await page.locator('.msg.assistant[data-status="complete"]', { hasText: 'Then I cannot tell.' }).waitFor();
      await page.locator('.tool-call[data-status="denied"]', { hasText: 'current_time' }).waitFor();
      await page.getByRole('button', { name: 'Send' }).waitFor();
    });
  });

  test('a grounded answer lists the sources it was given', async (tc) => {
    await inBrowser(tc, browser, async ({ page }) => {
      const user = await signIn(page);
      const shelf = await t.api('POST', '/v1/knowledge/collections', { token: user.accessToken, body: { name: 'Shelf' } });
      const guide = await uploadFile(t, user, 'otters.md', Buffer.from('# Otters\n\nSea otters hold hands while they sleep so they do not drift apart.\n'));
      const item = await t.api('POST', `/v1/knowledge/collections/${shelf.body.id}/items`, { token: user.accessToken, body: { fileId: guide.id } });
      await eventually(async () => assert.equal((await t.api('GET', `/v1/knowledge/items/${item.body.id}`, { token: user.accessToken })).body.status, 'ready'), 20_000);
      const id = await openConversation(page, user);
      assert.equal((await t.api('PUT', `/v1/conversations/${id}/collections`, { token: user.accessToken, body: { collectionIds: [shelf.body.id] } })).status, 200);
      // The default reply: the question's embedding is a request to the fake too, and a scripted reply could go to it.
      await say(page, 'Why do otters hold hands?');
      const answer = page.locator('.msg.assistant[data-status="complete"]');
      await answer.waitFor();
      await answer.getByText('Sources (1)').click();
      await answer.getByText('otters.md').waitFor();
    });
  });

  test('search finds a conversation by what was said in it', async (tc) => {
    await inBrowser(tc, browser, async ({ page }) => {
      const user = await signIn(page);
      const c = await t.api('POST', '/v1/conversations', { token: user.accessToken, body: { title: 'Zoo trip' } });
      const sent = await t.api('POST', `/v1/conversations/${c.body.id}/messages`, { token: user.accessToken, body: { content: 'Purple elephants dance at dawn' } });
      assert.equal(sent.status, 201);
      await t.api('POST', '/v1/conversations', { token: user.accessToken, body: { title: 'Other' } });
      await page.goto(`${t.url}/#/chat`);
      await page.getByLabel('Search conversations').fill('elephant');
      const results = page.getByRole('list', { name: 'Search results' });
      await results.getByRole('link', { name: /Zoo trip/ }).click();
      await page.getByRole('heading', { name: 'Zoo trip' }).waitFor();
      assert.equal(await results.locator('mark').first().innerText(), 'elephants');
      assert.equal(await results.getByRole('link', { name: /Other/ }).count(), 0);
    });
  });

  test('a long history pages: older conversations and more search results load on request', async (tc) => {
    await inBrowser(tc, browser, async ({ page }) => {
      const user = await signIn(page);
      // 55 conversations: a page of the list holds 50, a page of search results 20.
      for (let i = 1; i <= 55; i++) {
        const c = await t.api('POST', '/v1/conversations', { token: user.accessToken, body: { title: `Voyage ${String(i).padStart(2, '0')}` } });
        assert.equal(c.status, 201);
      }
      await page.goto(`${t.url}/#/chat`);
      const list = page.getByRole('complementary', { name: 'Conversations' }).getByRole('list').first();
      await list.getByRole('link', { name: 'Voyage 55' }).waitFor();
      assert.equal(await list.getByRole('link').count(), 50);
      assert.equal(await list.getByRole('link', { name: 'Voyage 01' }).count(), 0, 'the oldest is on a later page');
      await page.getByRole('button', { name: 'Older conversations' }).click();
      await list.getByRole('link', { name: 'Voyage 01' }).waitFor();
      assert.equal(await list.getByRole('link').count(), 55);
      assert.equal(await page.getByRole('button', { name: 'Older conversations' }).count(), 0, 'nothing more to load');

      // Opening one from the older page keeps the pages loaded; so does an answer in it, which brings it to the top.
      await list.getByRole('link', { name: 'Voyage 01' }).click();
      await page.getByRole('heading', { name: 'Voyage 01' }).waitFor();
      await list.locator('a[aria-current="page"]', { hasText: 'Voyage 01' }).waitFor();
      assert.equal(await list.getByRole('link').count(), 55);
      await say(page, 'Back to the first trip');
      await page.locator('.msg.assistant[data-status="complete"]').waitFor();
      await eventually(async () => assert.equal(await list.getByRole('link').first().innerText(), 'Voyage 01'));
      assert.equal(await list.getByRole('link').count(), 55);
      assert.equal(await list.getByRole('link', { name: 'Voyage 02' }).count(), 1, 'each once');

      await page.getByLabel('Search conversations').fill('voyage');
      const results = page.getByRole('list', { name: 'Search results' });
      await page.getByRole('button', { name: 'More results' }).waitFor();
      assert.equal(await results.getByRole('link').count(), 20);
      await page.getByRole('button', { name: 'More results' }).click();
      await eventually(async () => assert.equal(await results.getByRole('link').count(), 40));
      await page.getByRole('button', { name: 'More results' }).click();
      await eventually(async () => assert.equal(await results.getByRole('link').count(), 55));
      assert.equal(await page.getByRole('button', { name: 'More results' }).count(), 0);
      const titles = await results.locator('strong').allInnerTexts();
      assert.equal(new Set(titles).size, 55, 'each conversation once across the pages');
    });
  });

  test('pick a model from the catalog: the next answer asks that model; its code block has a copy button, and raw HTML in it is shown as text', async (tc) => {
    await inBrowser(tc, browser, async ({ page, context }) => {
      const user = await signIn(page);
      const id = await openConversation(page, user);
      await page.getByLabel('Model').selectOption('openai:gpt-4o');
      await eventually(async () => assert.equal((await t.api('GET', `/v1/conversations/${id}`, { token: user.accessToken })).body.model, 'openai:gpt-4o'));
      openai.script({ reply: 'I am **gpt-4o**. <img src="x" onerror="window.hacked=1"><script>window.hacked=2</script>\n\n```js\nconsole.log(42);\n```\n' });
      await say(page, 'Which model are you?');
      const answer = page.locator('.msg.assistant[data-status="complete"]');
      await answer.waitFor();
      // The answer's request, not the title's (it carries the first message too, to the default model, at any moment).
      const asked = answerRequests(openai).findLast((r) => sentTexts(r.body).includes('Which model are you?'));
      assert.equal(asked?.body.model, 'gpt-4o');
      await answer.getByText('gpt-4o', { exact: true }).first().waitFor();

      assert.equal((await answer.locator('pre code').innerText()).trim(), 'console.log(42);');
      assert.equal(await answer.locator('script, img, [onerror]').count(), 0);
      await answer.getByText('<img src="x" onerror="window.hacked=1">', { exact: false }).waitFor();
      assert.equal(await page.evaluate('window.hacked'), undefined);
      await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: t.url });
      await answer.getByRole('button', { name: 'Copy code' }).click();
      await answer.getByRole('button', { name: 'Copy code' }).filter({ hasText: 'Copied' }).waitFor();
      assert.equal(await page.evaluate('navigator.clipboard.readText()'), 'console.log(42);');
    });
  });

  test('on a phone (390×844) the chat is usable: the composer and the answer fit the width', async (tc) => {
    await inBrowser(
      tc,
      browser,
      async ({ page }) => {
        const user = await signIn(page);
        await openConversation(page, user);
        await say(page, 'Hello from a phone');
        await page.locator('.msg.assistant[data-status="complete"]').waitFor();
        await page.getByRole('button', { name: 'Send' }).scrollIntoViewIfNeeded();
        assert.ok(await page.getByRole('button', { name: 'Send' }).isVisible());
        assert.ok(await page.getByLabel('Model').isVisible());
        const width = await page.evaluate<number>('document.documentElement.scrollWidth');
        assert.ok(width <= 390, `no sideways scrolling (${width}px)`);
      },
      { viewport: { width: 390, height: 844 } },
    );
  });
});
