import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { after, before, describe, test } from 'node:test';
import type { Page } from 'playwright-core';
import { startApp, type TestApp } from '../../support/app.ts';
import { inBrowser, startBrowser, type BrowserSession } from '../../support/browser.ts';
import { eventually } from '../../support/eventually.ts';
import { createUser, type TestUser } from '../../support/factories.ts';
import { startFakeOpenAI, type FakeOpenAI } from '../../support/fake-openai.ts';
import { startMcpServer, type TestMcpServer } from '../../support/mcp-server.ts';

const NOTES = '# Field notes\n\nThe heron waits in the shallows of the marsh at dawn.\n\n## Later\n\nOtters slide down the muddy bank into the river.\n';

// The console is a client of the public API like any other: one backend is enough here.
// The app has an embedding model (the fake serves /v1/embeddings), so collections index as they would in production.
describe('console: projects, files, documents and knowledge in a real browser', () => {
  let t: TestApp;
  let openai: FakeOpenAI;
  let browser: BrowserSession;
  let u: TestUser;
  let reader: TestUser;
  let mcp: TestMcpServer;

  const signIn = async (page: Page, user: TestUser, hash: string) => {
    const res = await page.request.post(`${t.url}/v1/auth/login`, { data: { email: user.email, password: user.password, cookie: true } });
    assert.equal(res.status(), 200, await res.text());
    await page.goto(`${t.url}/#${hash}`);
  };
  const api = (method: string, path: string, body?: unknown, who = u) => t.api(method, path, { token: who.accessToken, body });

  before(async () => {
    openai = await startFakeOpenAI();
    mcp = await startMcpServer({ token: 'mcp-secret' });
    t = await startApp({
      env: { ...openai.env, MCP_ALLOW_PRIVATE: 'true', EMBEDDING_MODEL: 'openai:text-embedding-3-small', DEFAULT_MODEL: 'openai:gpt-4o-mini', AI_RETRIES: '0', KNOWLEDGE_INGEST_BACKOFF_MS: '100' },
    });
    u = await createUser(t, { name: 'Ada' });
    reader = await createUser(t, { name: 'Bea' });
    browser = await startBrowser();
  });
  after(async () => {
    await browser.close();
    await t.close();
    await openai.close();
    await mcp.close();
  });

  test('a project with a system prompt and a tool; a second prompt added and made active', async (tc) => {
    const tools = (await api('GET', '/v1/tools')).body.data as { name: string; needsApproval: boolean }[];
    const tool = tools.find((x) => !x.needsApproval) ?? tools[0];
    assert.ok(tool, 'some built-in tool to offer');
    await inBrowser(tc, browser, async ({ page }) => {
      // The tool list comes late: what is typed before it arrives stays typed when the form renders again.
      await page.route('**/v1/tools', async (route) => {
        await new Promise((r) => setTimeout(r, 700));
        await route.continue();
      });
      await signIn(page, u, '/projects');
      await page.getByRole('link', { name: 'New project' }).click();
      await page.getByLabel('Name', { exact: true }).fill('Research helper');
      await page.getByLabel('System prompt').fill('You help with research. Cite sources.');
      await page.getByLabel('Temperature').fill('0.3');
      await page.getByLabel(`Offer ${tool.name}`).check();
      assert.equal(await page.getByLabel('Name', { exact: true }).inputValue(), 'Research helper');
      assert.equal(await page.getByLabel('Temperature').inputValue(), '0.3');
      await page.getByRole('button', { name: 'Create project' }).click();
      await page.getByRole('heading', { level: 1, name: 'Research helper' }).waitFor();
      const id = page.url().split('/').pop()!;

      const saved = (await api('GET', `/v1/projects/${id}`)).body;
      assert.equal(saved.activePrompt.content, 'You help with research. Cite sources.');
      assert.equal(saved.activePrompt.name, 'Default');
      assert.deepEqual(saved.tools, [tool.name]);
      assert.equal(saved.temperature, 0.3);
      assert.ok(await page.getByLabel(`Offer ${tool.name}`).isChecked(), 'the saved form shows the tool checked');
      assert.equal(await page.getByRole('link', { name: 'Research helper' }).getAttribute('aria-current'), 'page');

      await page.getByLabel('Prompt name').fill('Terse');
      await page.getByLabel('Prompt text').fill('Answer in one sentence.');
      await page.getByRole('button', { name: 'Add prompt' }).click();
      await page.getByRole('button', { name: 'Activate Terse' }).click();
      await page.locator('.prompts li[aria-current="true"]', { hasText: 'Terse' }).waitFor();
      await page.getByRole('button', { name: 'Activate Default' }).waitFor();
      const after = (await api('GET', `/v1/projects/${id}`)).body;
      assert.equal(after.activePrompt.name, 'Terse');
      assert.equal(after.activePrompt.content, 'Answer in one sentence.');

      await page.getByRole('button', { name: 'Edit Terse' }).click();
      assert.equal(await page.getByLabel('Text of Terse').inputValue(), 'Answer in one sentence.');
      await page.getByLabel('Text of Terse').fill('Answer in one short sentence.');
      await page.getByRole('button', { name: 'Save prompt' }).click();
      await page.locator('.prompts li[aria-current="true"] .prompt-text', { hasText: 'one short sentence' }).waitFor();
      assert.equal((await api('GET', `/v1/projects/${id}`)).body.activePrompt.content, 'Answer in one short sentence.');
    });
  });

  test('an MCP server: added with a credential, its live tools listed, one left off the allow-list, one off for me, the credential replaced and removed', async (tc) => {
    const project = await api('POST', '/v1/projects', { name: 'Toolsmith' });
    assert.equal(project.status, 201);
    await inBrowser(tc, browser, async ({ page }) => {
      await signIn(page, u, `/projects/${project.body.id}`);
      await page.getByRole('heading', { level: 1, name: 'Toolsmith' }).waitFor();
      const add = page.getByRole('form', { name: 'Add an MCP server' });
      await add.getByLabel('Server name').fill('calc');
      await add.getByLabel('Server URL').fill(mcp.url);
      await add.getByLabel('Credential value').fill('Bearer mcp-secret');
      await add.getByRole('button', { name: 'Add server' }).click();
      await page.getByRole('status').filter({ hasText: 'Added calc.' }).waitFor();
      const server = (await api('GET', `/v1/projects/${project.body.id}/mcp-servers`)).body.data[0];
      assert.equal(server.hasCredentials, true);

      // The tools are asked of the server itself, with the credential.
      await page.getByRole('button', { name: 'Edit calc' }).click();
      const tools = page.getByRole('list', { name: 'Tools of calc' });
      await tools.getByText('calc__add').waitFor();
      assert.equal(mcp.requests.at(-1)?.headers.authorization, 'Bearer mcp-secret');
      await page.getByLabel('Offer calc__hang in this project').click();
      await page.getByRole('status').filter({ hasText: 'calc__hang is no longer offered.' }).waitFor();
      const allowed = (await api('GET', `/v1/projects/${project.body.id}/mcp-servers/${server.id}`)).body.allowedTools;
      assert.ok(Array.isArray(allowed) && !allowed.includes('hang') && allowed.includes('add'), JSON.stringify(allowed));
      await page.getByLabel('calc__echo on for me').click();
      await page.getByRole('status').filter({ hasText: 'calc__echo is off for you.' }).waitFor();
      assert.deepEqual((await api('GET', '/v1/mcp-tools/disabled')).body.data.map((d: any) => d.name), ['calc__echo']);
      const offered = (await api('GET', `/v1/tools?projectId=${project.body.id}`)).body.data.map((x: any) => x.name);
      assert.ok(offered.includes('calc__add') && !offered.includes('calc__hang') && !offered.includes('calc__echo'), offered.join(', '));

      // A wrong credential: the server refuses, and the page says so when it asks for the tools.
      const settings = page.getByRole('form', { name: 'Settings of calc' });
      await settings.getByLabel('Credential value').fill('Bearer wrong');
      await settings.getByLabel('Ask before each call').check();
      await settings.getByRole('button', { name: 'Save server' }).click();
      await page.getByRole('status').filter({ hasText: 'Saved calc.' }).waitFor();
      await settings.getByRole('alert').waitFor();
      assert.equal((await api('GET', `/v1/projects/${project.body.id}/mcp-servers/${server.id}`)).body.needsApproval, true);
      await page.getByRole('button', { name: 'Remove the credential' }).click();
      await page.getByRole('status').filter({ hasText: 'Credential removed.' }).waitFor();
      assert.equal((await api('GET', `/v1/projects/${project.body.id}/mcp-servers/${server.id}`)).body.hasCredentials, false);
    }, { expected: [/^502 from GET .*\/mcp-servers\/[^/]+\/tools$/, /^console: Failed to load resource: the server responded with a status of 502/] });
  });

  test('files: upload two, see them listed, download one, delete the other', async (tc) => {
    await inBrowser(tc, browser, async ({ page }) => {
      await signIn(page, u, '/files');
      await page.getByLabel('File to upload').setInputFiles([
        { name: 'notes.md', mimeType: 'text/markdown', buffer: Buffer.from(NOTES) },
        { name: 'scratch.txt', mimeType: 'text/plain', buffer: Buffer.from('throw me away\n') },
      ]);
      await page.getByRole('button', { name: 'Upload', exact: true }).click();
      await page.getByRole('cell', { name: 'notes.md', exact: true }).waitFor();
      await page.getByRole('cell', { name: 'scratch.txt', exact: true }).waitFor();

      const [download] = await Promise.all([page.waitForEvent('download'), page.getByRole('link', { name: 'Download notes.md' }).click()]);
      assert.equal(download.suggestedFilename(), 'notes.md');
      assert.equal(await readFile((await download.path())!, 'utf8'), NOTES);

      await page.getByRole('button', { name: 'Delete scratch.txt' }).click();
      await page.getByRole('cell', { name: 'scratch.txt', exact: true }).waitFor({ state: 'detached' });
      await page.getByRole('status').filter({ hasText: 'Deleted scratch.txt' }).waitFor();
      const left = (await api('GET', '/v1/files')).body.data.map((f: { name: string }) => f.name);
      assert.deepEqual(left, ['notes.md']);
    });
  });

  test('files: several at once, one refused: the others are uploaded and listed, the refused one is named with why', async (tc) => {
    await inBrowser(tc, browser, async ({ page }) => {
      await signIn(page, u, '/files');
      await page.getByLabel('File to upload').setInputFiles([
        { name: 'first.txt', mimeType: 'text/plain', buffer: Buffer.from('one\n') },
        // HTML named .png: the server goes by the bytes and refuses it.
        { name: 'fake.png', mimeType: 'image/png', buffer: Buffer.from('<html><script>alert(1)</script></html>') },
        { name: 'third.txt', mimeType: 'text/plain', buffer: Buffer.from('three\n') },
      ]);
      await page.getByRole('button', { name: 'Upload', exact: true }).click();
      const refused = page.getByRole('alert', { name: 'Not uploaded' });
      await refused.getByText(/^fake\.png was not uploaded: .+/).waitFor();
      assert.equal(await refused.getByRole('listitem').count(), 1);
      await page.getByRole('status').filter({ hasText: 'Uploaded first.txt, third.txt' }).waitFor();
      await page.getByRole('cell', { name: 'first.txt', exact: true }).waitFor();
      await page.getByRole('cell', { name: 'third.txt', exact: true }).waitFor();
      const names = (await api('GET', '/v1/files')).body.data.map((f: { name: string }) => f.name);
      assert.ok(names.includes('first.txt') && names.includes('third.txt') && !names.includes('fake.png'), names.join(', '));
    });
  });

  test('documents: write one, save it twice, see the versions and a diff, share it, comment on it, save through a conflict, restore', async (tc) => {
    await inBrowser(tc, browser, async ({ page }) => {
      await signIn(page, u, '/documents');
      await page.getByRole('link', { name: 'New document' }).click();
      await page.getByLabel('Title', { exact: true }).fill('Trip plan');
      await page.getByLabel('Text', { exact: true }).fill('Day one: the marsh.\n');
      await page.getByRole('button', { name: 'Create document' }).click();
      await page.getByRole('heading', { level: 1, name: 'Trip plan' }).waitFor();
      const id = page.url().split('/').pop()!;

      await page.getByLabel('Text', { exact: true }).fill('Day one: the marsh.\nDay two: the river.\n');
      await page.getByRole('button', { name: 'Save' }).click();
      await page.getByRole('status').filter({ hasText: 'Saved version 2' }).waitFor();
      await page.getByLabel('Text', { exact: true }).fill('Day one: the marsh at dawn.\nDay two: the river.\n');
      await page.getByRole('button', { name: 'Save' }).click();
      await page.getByRole('status').filter({ hasText: 'Saved version 3' }).waitFor();
      await page.locator('.versions li', { hasText: 'Version 2' }).waitFor();
      await page.locator('.versions li[aria-current="true"]', { hasText: 'Version 3' }).waitFor();
      assert.equal(await page.locator('.versions li').count(), 3);
      await page.getByRole('button', { name: 'Changes in version 3' }).click();
      await page.locator('.diff pre .add', { hasText: '+Day one: the marsh at dawn.' }).waitFor();
      await page.locator('.diff pre .del', { hasText: '-Day one: the marsh.' }).waitFor();
      assert.equal((await api('GET', `/v1/documents/${id}`)).body.version, 3);

      assert.equal((await api('GET', `/v1/documents/${id}`, undefined, reader)).status, 404, 'not shared yet');
      // Someone without an account: the API's problem is shown, nothing is shared.
      await page.getByLabel('Share with (email)').fill('nobody-here@example.com');
      await page.getByRole('button', { name: 'Share', exact: true }).click();
      await page.getByRole('alert').filter({ hasText: /no account|not found/i }).waitFor();
      await page.getByLabel('Share with (email)').fill(reader.email);
      await page.getByLabel('Role', { exact: true }).selectOption('commenter');
      await page.getByRole('button', { name: 'Share', exact: true }).click();
      await page.getByRole('button', { name: `Stop sharing with ${reader.email}` }).waitFor();
      const read = await api('GET', `/v1/documents/${id}`, undefined, reader);
      assert.equal(read.status, 200, read.text);
      assert.equal(read.body.role, 'commenter');
      assert.match(read.body.body, /the marsh at dawn/);

      // The passage is filled in with the first line; the comment quotes it.
      assert.equal(await page.getByLabel('Passage').inputValue(), 'Day one: the marsh at dawn.');
      await page.getByLabel('Comment', { exact: true }).fill('Bring binoculars.');
      await page.getByRole('button', { name: 'Add comment' }).click();
      await page.locator('.comment', { hasText: 'Bring binoculars.' }).waitFor();
      const comments = (await api('GET', `/v1/documents/${id}/comments`)).body.data;
      assert.equal(comments.length, 1);
      assert.equal(comments[0].quote, 'Day one: the marsh at dawn.');

      // Someone saves while this page edits: the save is a conflict, never an overwrite; keeping mine saves over theirs as a new version.
      await page.getByLabel('Text', { exact: true }).fill('Day one: the marsh at dawn.\nDay two: the river at dusk.\n');
      const theirs = await api('PUT', `/v1/documents/${id}`, { body: 'Day one: the marsh at dawn.\nDay three: home.\n', baseVersion: 3 });
      assert.equal(theirs.status, 200, theirs.text);
      await page.getByRole('button', { name: 'Save' }).click();
      await page.getByRole('alert').filter({ hasText: 'Version 4 was saved while you were editing' }).waitFor();
      await page.getByRole('button', { name: 'Keep mine' }).click();
      await page.getByRole('button', { name: 'Save' }).click();
      await page.getByRole('status').filter({ hasText: 'Saved version 5' }).waitFor();
      assert.match((await api('GET', `/v1/documents/${id}/versions/4`)).body.body, /Day three: home/, "theirs is kept in the history");

      await page.getByRole('button', { name: 'Restore version 1' }).click();
      await page.getByRole('status').filter({ hasText: 'Restored version 1' }).waitFor();
      await page.locator('.versions li[aria-current="true"]', { hasText: 'Version 6' }).waitFor();
      assert.equal(await page.getByLabel('Text', { exact: true }).inputValue(), 'Day one: the marsh.\n');
    });
  });

  test('documents: every comment shows past the first page of the API, a late reply under its thread', async (tc) => {
    const doc = (await api('POST', '/v1/documents', { title: 'Much discussed', body: 'The plan is simple.\n' })).body;
    // One more than the API's largest page, and a reply to the first written last: it comes on the second page, its thread on the first.
    const ids: string[] = [];
    for (let i = 1; i <= 101; i++) {
      const c = await api('POST', `/v1/documents/${doc.id}/comments`, { body: `Remark ${i}`, quote: 'The plan is simple.' });
      assert.equal(c.status, 201, c.text);
      ids.push(c.body.id);
    }
    assert.equal((await api('POST', `/v1/documents/${doc.id}/comments`, { body: 'A late reply to the first', parentId: ids[0] })).status, 201);
    await inBrowser(tc, browser, async ({ page }) => {
      await signIn(page, u, `/documents/${doc.id}`);
      const comments = page.locator('ul.comments');
      await comments.getByText('Remark 101', { exact: true }).waitFor();
      assert.equal(await comments.locator(':scope > li').count(), 101, 'every thread');
      await comments.locator(':scope > li').first().getByText('A late reply to the first').waitFor();
      assert.match(await comments.locator(':scope > li').first().locator('article').first().innerText(), /Remark 1\b/);
    });
  });

  test('documents: offered as a template and started from it; a share link opened by another user, then revoked', async (tc) => {
    const recipe = await api('POST', '/v1/documents', { title: 'Recipe card', body: '# Recipe\n\nFlour and water.' });
    assert.equal(recipe.status, 201);
    let address = '';
    await inBrowser(tc, browser, async ({ page }) => {
      await signIn(page, u, `/documents/${recipe.body.id}`);
      await page.getByRole('heading', { level: 1, name: 'Recipe card' }).waitFor();
      await page.getByLabel('Offer as a template').click();
      await page.getByText('Offered as a template').waitFor();
      assert.equal((await api('GET', `/v1/documents/${recipe.body.id}`)).body.isTemplate, true);

      await page.getByRole('link', { name: 'New document' }).click();
      await page.getByLabel('Start from').selectOption({ label: 'Recipe card' });
      await page.getByRole('textbox', { name: 'Title' }).fill('Bread');
      await page.getByRole('button', { name: 'Create document' }).click();
      await page.getByRole('heading', { level: 1, name: 'Bread' }).waitFor();
      const bread = (await api('GET', `/v1/documents/${page.url().split('/').pop()}`)).body;
      assert.equal(bread.body, '# Recipe\n\nFlour and water.', 'the template\'s text');
      assert.equal(bread.isTemplate, false);

      await page.goto(`${t.url}/#/documents/${recipe.body.id}`);
      const form = page.getByRole('form', { name: 'New share link' });
      await form.getByLabel('Expires').selectOption({ label: 'In a week' });
      await form.getByRole('button', { name: 'Create link' }).click();
      address = await page.getByLabel('Link address').inputValue();
      assert.match(address, new RegExp(`^${t.url}/#/documents/shared/.+`));
      const links = (await api('GET', `/v1/documents/${recipe.body.id}/links`)).body.data;
      assert.equal(links.length, 1);
      assert.ok(address.endsWith(links[0].last4), 'the list names the link by its last four characters');
      assert.ok(Date.parse(links[0].expiresAt) - Date.now() > 6 * 24 * 3600_000);

      // More links than one page of the list: the page shows every one.
      for (let i = 0; i < 24; i++) assert.equal((await api('POST', `/v1/documents/${recipe.body.id}/links`, {})).status, 201);
      await page.reload();
      const listed = page.getByRole('list', { name: 'Links' }).getByRole('listitem');
      await listed.nth(24).waitFor();
      assert.equal(await listed.count(), 25);
      for (const l of (await api('GET', `/v1/documents/${recipe.body.id}/links?limit=100`)).body.data.slice(1)) {
        assert.equal((await api('DELETE', `/v1/documents/${recipe.body.id}/links/${l.id}`)).status, 204);
      }
    });
    await inBrowser(tc, browser, async ({ page }) => {
      // Someone else, signed in, opens the address: the document, read-only.
      const res = await page.request.post(`${t.url}/v1/auth/login`, { data: { email: reader.email, password: reader.password, cookie: true } });
      assert.equal(res.status(), 200);
      await page.goto(address);
      await page.getByRole('heading', { level: 1, name: 'Recipe card' }).waitFor();
      await page.getByText('Flour and water.').waitFor();
      assert.equal(await page.getByRole('button', { name: 'Save' }).count(), 0);

      const link = (await api('GET', `/v1/documents/${recipe.body.id}/links`)).body.data[0];
      assert.equal((await api('DELETE', `/v1/documents/${recipe.body.id}/links/${link.id}`)).status, 204);
      await page.reload();
      await page.getByRole('alert').filter({ hasText: 'This link was revoked' }).waitFor();
      // A mangled address (a malformed escape) is an unknown link, not a page that fails to draw.
      await page.goto(`${t.url}/#/documents/shared/%E0`);
      await page.getByRole('alert').waitFor();
    });
  });

  test('documents: a file attached and removed; two people on one document see each other there', async (tc) => {
    const doc = await api('POST', '/v1/documents', { title: 'Shared plan', body: 'Step one.' });
    assert.equal(doc.status, 201);
    assert.equal((await api('POST', `/v1/documents/${doc.body.id}/shares`, { email: reader.email, role: 'editor' })).status, 201);
    const form = new FormData();
    form.append('file', new Blob(['the budget sheet']), 'budget.txt');
    const file = await fetch(`${t.url}/v1/files`, { method: 'POST', headers: { authorization: `Bearer ${u.accessToken}` }, body: form }).then((r) => r.json() as Promise<any>);
    await inBrowser(tc, browser, async ({ page }) => {
      await signIn(page, u, `/documents/${doc.body.id}`);
      await page.getByRole('heading', { level: 1, name: 'Shared plan' }).waitFor();
      await page.getByLabel('One of your files').selectOption({ label: 'budget.txt' });
      await page.getByRole('button', { name: 'Attach' }).click();
      await page.getByRole('list', { name: 'Attachments' }).getByRole('link', { name: 'budget.txt' }).waitFor();
      const attached = (await api('GET', `/v1/documents/${doc.body.id}/attachments`)).body.data;
      assert.deepEqual(attached.map((a: any) => a.fileId), [file.id]);

      // The reader opens it too: each page says someone else is there.
      await inBrowser(tc, browser, async ({ page: other }) => {
        await signIn(other, reader, `/documents/${doc.body.id}`);
        await other.getByRole('heading', { level: 1, name: 'Shared plan' }).waitFor();
        await other.getByRole('status').filter({ hasText: 'Also here: 1 other person (1 editing)' }).waitFor();
        // The file is the owner's, and the reader downloads it from the document.
        const href = await other.getByRole('list', { name: 'Attachments' }).getByRole('link', { name: 'budget.txt' }).getAttribute('href');
        const download = await other.evaluate(async (url) => {
          const res = await fetch(url!);
          return [res.status, await res.text()];
        }, href);
        assert.deepEqual(download, [200, 'the budget sheet']);
        await page.reload();
        await page.getByRole('status').filter({ hasText: 'Also here: 1 other person (1 editing)' }).waitFor();
      });

      await page.getByRole('button', { name: 'Remove budget.txt' }).click();
      await page.getByRole('status').filter({ hasText: 'Removed budget.txt.' }).waitFor();
      assert.deepEqual((await api('GET', `/v1/documents/${doc.body.id}/attachments`)).body.data, []);
      assert.equal((await api('GET', `/v1/files/${file.id}`)).status, 200, 'the file itself stays');
    });
  });

  test('knowledge: a collection, the uploaded file added, indexing reaches ready, a search finds its passage', async (tc) => {
    await inBrowser(tc, browser, async ({ page }) => {
      // The page follows indexing on the WebSocket too (the `knowledge` topic), with progress.
      const frames: any[] = [];
      page.on('websocket', (ws) => ws.on('framereceived', (f) => frames.push(JSON.parse(String(f.payload)))));
      await signIn(page, u, '/knowledge');
      await page.getByRole('link', { name: 'New collection' }).click();
      await page.getByLabel('Collection name').fill('Wildlife');
      await page.getByRole('button', { name: 'Create collection' }).click();
      await page.getByRole('heading', { level: 1, name: 'Wildlife' }).waitFor();
      await page.getByLabel('File or document to add').selectOption({ label: 'notes.md' });
      await page.getByRole('button', { name: 'Add to collection' }).click();
      await page.locator('tr[data-status="ready"]', { hasText: 'notes.md' }).waitFor({ timeout: 20_000 });
      const id = page.url().split('/').pop()!;
      const updates = await eventually(() => {
        const got = frames.filter((f) => f.type === 'event' && f.event.type === 'knowledge.item.updated').map((f) => f.event.payload);
        assert.ok(got.some((e) => e.status === 'ready'), 'the socket heard the item become ready');
        return got;
      });
      assert.ok(updates.some((e) => e.status === 'indexing' && typeof e.progress === 'number'), 'with progress on the way');
      const items = (await api('GET', `/v1/knowledge/collections/${id}/items`)).body.data;
      assert.equal(items[0].status, 'ready');
      assert.ok(items[0].chunks >= 1);

      await page.getByLabel('Search this collection').fill('otters');
      await page.getByRole('button', { name: 'Search', exact: true }).click();
      const hit = page.getByRole('list', { name: 'Results' }).getByRole('listitem').first();
      await hit.locator('mark', { hasText: /otters/i }).waitFor();
      assert.match(await hit.innerText(), /slide down the muddy bank/);
    });
  });

  test('on a phone-sized screen the files page fits and its controls are reachable', async (tc) => {
    await inBrowser(
      tc,
      browser,
      async ({ page }) => {
        await signIn(page, u, '/files');
        await page.getByRole('cell', { name: 'notes.md', exact: true }).waitFor();
        await page.getByRole('link', { name: 'Download notes.md' }).scrollIntoViewIfNeeded();
        assert.ok(await page.getByRole('button', { name: 'Upload', exact: true }).isVisible());
        const overflow = (await page.evaluate('document.documentElement.scrollWidth - window.innerWidth')) as number;
        assert.ok(overflow <= 0, `the page scrolls sideways by ${overflow}px`);
        const box = (await page.getByRole('button', { name: 'Delete notes.md' }).boundingBox())!;
        assert.ok(box.x >= 0 && box.x + box.width <= 390, 'Delete is on screen');
      },
      { viewport: { width: 390, height: 844 } },
    );
  });
});
