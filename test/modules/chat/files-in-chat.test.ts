import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, beforeEach, describe, test } from 'node:test';
import { backends, type TestApp } from '../../support/app.ts';
import { PNG, uploadFile } from '../../support/files.ts';
import { createUser, type TestUser } from '../../support/factories.ts';
import { pdfWithText } from '../../support/pdf.ts';
import { answerRequests, chatAs, startChat, waitFor, type ChatFixture } from './generation-fixture.ts';

const PNG_URL = `data:image/png;base64,${PNG.toString('base64')}`;

/**
 * Models beyond the built-in table: `openai:tiny` sees images and has a small
 * window (its files get (3000 − 200) / 2 = 1400 tokens); any other unknown
 * model, such as `openai:gpt-3.5-turbo`, is taken not to see.
 */
function aiConfig(): string {
  const path = join(mkdtempSync(join(tmpdir(), 'parley-files-chat-')), 'ai.json');
  writeFileSync(path, JSON.stringify({ models: [{ id: 'openai:tiny', contextWindow: 3000, maxOutputTokens: 200, vision: true }] }));
  return path;
}

/** The last user message of the last answer request, as the upstream received it. */
const lastUserContent = (fake: ChatFixture['openai']) => {
  const requests = answerRequests(fake);
  const messages = requests.at(-1)!.body.messages as Array<{ role: string; content: unknown }>;
  return messages.filter((m) => m.role === 'user').at(-1)!.content;
};
const asText = (content: unknown) => (typeof content === 'string' ? content : JSON.stringify(content));

for (const backend of backends()) {
  describe(`chat: files the model can see [${backend}]`, () => {
    let f: ChatFixture;
    let u: TestUser;
    before(async () => {
      f = await startChat(backend, { PARLEY_AI_CONFIG: aiConfig() });
      u = await createUser(f.t);
    });
    after(() => f.close());
    beforeEach(() => {
      f.openai.reset();
      f.anthropic.reset();
    });

    test('an image goes to OpenAI as an image_url data URL of its exact bytes; the message lists the file', async () => {
      const png = await uploadFile(f.t, u, 'dot.png', PNG);
      const chat = chatAs(f.t, u);
      const c = await chat.conversation();
      const res = await chat.send(c, { content: [{ type: 'text', text: 'What is in this picture?' }, { type: 'file', fileId: png.id }] });
      assert.equal(res.status, 201, res.text);
      const content = lastUserContent(f.openai) as Array<Record<string, any>>;
      assert.ok(Array.isArray(content), 'sent as parts');
      assert.deepEqual(content[0], { type: 'text', text: 'What is in this picture?\n\n[image dot.png]' });
      assert.deepEqual(content[1], { type: 'image_url', image_url: { url: PNG_URL } });
      const branch = await chat.branch(c);
      assert.deepEqual(branch.data[0].content, [
        { type: 'text', text: 'What is in this picture?' },
        { type: 'file', fileId: png.id, name: 'dot.png', mimeType: 'image/png', size: PNG.length },
      ]);
    });

    test('an image goes to Anthropic as a base64 image block with its media type', async () => {
      const png = await uploadFile(f.t, u, 'dot.png', PNG);
      const chat = chatAs(f.t, u);
      const c = await chat.conversation({ title: 'T', model: 'anthropic:claude-haiku-4-5' });
      const res = await chat.send(c, { content: [{ type: 'file', fileId: png.id }, { type: 'text', text: 'Describe it' }] });
      assert.equal(res.status, 201, res.text);
      const request = answerRequests(f.anthropic).at(-1)!;
      const user = request.body.messages.at(-1);
      assert.equal(user.role, 'user');
      const image = user.content.find((p: { type: string }) => p.type === 'image');
      assert.deepEqual(image.source, { type: 'base64', media_type: 'image/png', data: PNG.toString('base64') });
      assert.ok(user.content.some((p: { type: string; text?: string }) => p.type === 'text' && p.text?.includes('Describe it')));
    });

    test('a text file and a PDF go into the prompt as delimited blocks; a message may be files alone', async () => {
      const notes = await uploadFile(f.t, u, 'notes.md', Buffer.from('# Plan\nShip the importer on Tuesday.\n'));
      const report = await uploadFile(f.t, u, 'report.pdf', pdfWithText('Quarterly revenue grew 42 percent'));
      assert.equal(report.mimeType, 'application/pdf');
      const chat = chatAs(f.t, u);
      const c = await chat.conversation();
      const res = await chat.send(c, { content: [{ type: 'file', fileId: notes.id }, { type: 'file', fileId: report.id }] });
      assert.equal(res.status, 201, res.text);
      const prompt = lastUserContent(f.openai);
      assert.equal(typeof prompt, 'string', 'no image: plain text content');
      assert.match(prompt as string, /<file name="notes.md" type="text\/markdown">\n# Plan\nShip the importer on Tuesday.\n\n<\/file>/);
      assert.match(prompt as string, /<file name="report.pdf" type="application\/pdf">\nQuarterly revenue grew 42 percent\n<\/file>/);
      assert.doesNotMatch(prompt as string, /truncated/);
      // The PDF's text is kept beside it, for the next turns.
      assert.ok((await f.t.deps.storage.keys(`files/${u.id}/${report.id}/`)).some((k) => k.endsWith('/text.txt')));
      const again = await chat.send(c, { content: 'And the revenue?' });
      assert.equal(again.status, 201, again.text);
      const history = answerRequests(f.openai).at(-1)!.body.messages.map((m: { content: unknown }) => asText(m.content)).join('\n');
      assert.match(history, /Quarterly revenue grew 42 percent/, 'earlier files stay in the history');
    });

    test('a large text file is cut to the model\'s room, with a note saying so', async () => {
      const words = Array.from({ length: 6000 }, (_, i) => `word${i}`).join(' ');
      const big = await uploadFile(f.t, u, 'big.txt', Buffer.from(words));
      const chat = chatAs(f.t, u);
      const c = await chat.conversation({ title: 'T', model: 'openai:tiny' });
      const res = await chat.send(c, { content: [{ type: 'text', text: 'Summarise' }, { type: 'file', fileId: big.id }] });
      assert.equal(res.status, 201, res.text);
      const prompt = lastUserContent(f.openai) as string;
      const note = /\[truncated: first (\d+) of (\d+) tokens of big\.txt\]/.exec(prompt);
      assert.ok(note, prompt.slice(-300));
      assert.equal(Number(note[1]), 1400);
      assert.ok(Number(note[2]) > 1400);
      assert.match(prompt, /word0 word1/);
      assert.doesNotMatch(prompt, /word5999/);
    });

    test('a model that cannot see images: 400 before any upstream call, nothing stored', async () => {
      const png = await uploadFile(f.t, u, 'dot.png', PNG);
      const chat = chatAs(f.t, u);
      const c = await chat.conversation({ title: 'T', model: 'openai:gpt-3.5-turbo' });
      const res = await chat.send(c, { content: [{ type: 'text', text: 'What is this?' }, { type: 'file', fileId: png.id }] });
      assert.equal(res.status, 400, res.text);
      assert.equal(res.body.code, 'model_cannot_see_images');
      assert.match(res.body.detail, /openai:gpt-3\.5-turbo/);
      assert.equal(f.openai.requests.length, 0);
      assert.deepEqual((await chat.branch(c)).data, []);
      // The same model still reads text files.
      const notes = await uploadFile(f.t, u, 'notes.txt', Buffer.from('The code word is marmalade.'));
      const ok = await chat.send(c, { content: [{ type: 'file', fileId: notes.id }] });
      assert.equal(ok.status, 201, ok.text);
      assert.match(lastUserContent(f.openai) as string, /marmalade/);
    });

    test('with an image, fallbacks that cannot see are skipped; one that can answers', async () => {
      const png = await uploadFile(f.t, u, 'dot.png', PNG);
      const project = await f.t.api('POST', '/v1/projects', {
        token: u.accessToken,
        body: { name: 'P', model: 'openai:gpt-4o-mini', fallbackModels: ['openai:gpt-3.5-turbo', 'anthropic:claude-haiku-4-5'] },
      });
      assert.equal(project.status, 201, project.text);
      const chat = chatAs(f.t, u);
      const c = await chat.conversation({ title: 'T', projectId: project.body.id });
      f.openai.script({ status: 500 });
      const res = await chat.send(c, { content: [{ type: 'text', text: 'Look' }, { type: 'file', fileId: png.id }] });
      assert.equal(res.status, 201, res.text);
      assert.equal(res.body.provider, 'anthropic');
      assert.deepEqual(answerRequests(f.openai).map((r) => r.body.model), ['gpt-4o-mini'], 'gpt-3.5-turbo was never sent the image');
      assert.deepEqual(res.body.attempts.map((a: { model: string }) => a.model), ['gpt-4o-mini']);
    });

    test('earlier images become a note for a model that cannot see, and the conversation goes on', async () => {
      const png = await uploadFile(f.t, u, 'dot.png', PNG);
      const chat = chatAs(f.t, u);
      const c = await chat.conversation();
      assert.equal((await chat.send(c, { content: [{ type: 'text', text: 'Look' }, { type: 'file', fileId: png.id }] })).status, 201);
      const res = await chat.send(c, { content: 'Now in words only', model: 'openai:gpt-3.5-turbo' });
      assert.equal(res.status, 201, res.text);
      const request = answerRequests(f.openai).at(-1)!;
      assert.equal(request.body.model, 'gpt-3.5-turbo');
      const history = request.body.messages.map((m: { content: unknown }) => asText(m.content)).join('\n');
      assert.match(history, /\[image dot\.png not shown: openai:gpt-3\.5-turbo cannot see images\]/);
      assert.doesNotMatch(history, /image_url/);
    });

    test('an image over 5 MB is refused when attached; an unreadable PDF is named to the model, not fatal', async () => {
      const huge = Buffer.concat([PNG.subarray(0, 33), Buffer.alloc(5 * 1024 * 1024 + 1, 7)]);
      const big = await uploadFile(f.t, u, 'huge.png', huge);
      assert.equal(big.mimeType, 'image/png');
      const chat = chatAs(f.t, u);
      const c = await chat.conversation();
      const refused = await chat.send(c, { content: [{ type: 'file', fileId: big.id }] });
      assert.equal(refused.status, 413, refused.text);
      assert.equal(refused.body.code, 'image_too_large');
      assert.deepEqual((await chat.branch(c)).data, []);
      const broken = await uploadFile(f.t, u, 'broken.pdf', Buffer.from('%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n'));
      const res = await chat.send(c, { content: [{ type: 'text', text: 'Read it' }, { type: 'file', fileId: broken.id }] });
      assert.equal(res.status, 201, res.text);
      assert.match(lastUserContent(f.openai) as string, /\[file broken\.pdf could not be read: /);
    });

    test("another user's file is not found, and nothing is stored", async () => {
      const stranger = await createUser(f.t);
      const theirs = await uploadFile(f.t, stranger, 'secret.txt', Buffer.from('not yours'));
      const chat = chatAs(f.t, u);
      const c = await chat.conversation();
      const res = await chat.send(c, { content: [{ type: 'text', text: 'Read this' }, { type: 'file', fileId: theirs.id }] });
      assert.equal(res.status, 404, res.text);
      assert.equal(res.body.code, 'file_not_found');
      assert.equal(f.openai.requests.length, 0);
      assert.deepEqual((await chat.branch(c)).data, []);
    });

    test('at most 10 files a message; an empty message without files is refused', async () => {
      const chat = chatAs(f.t, u);
      const c = await chat.conversation();
      const notes = await uploadFile(f.t, u, 'n.txt', Buffer.from('x'));
      const eleven = Array.from({ length: 11 }, () => ({ type: 'file', fileId: notes.id }));
      assert.equal((await chat.send(c, { content: eleven })).status, 400);
      assert.equal((await chat.send(c, { content: [{ type: 'text', text: '  ' }] })).status, 400);
      assert.equal(f.openai.requests.length, 0);
    });

    test('a deleted file is listed as deleted, and the next turn tells the model so', async () => {
      const notes = await uploadFile(f.t, u, 'minutes.txt', Buffer.from('Decided: move the launch to May.'));
      const chat = chatAs(f.t, u);
      const c = await chat.conversation();
      const first = await chat.send(c, { content: [{ type: 'text', text: 'Keep this' }, { type: 'file', fileId: notes.id }] });
      assert.equal(first.status, 201, first.text);
      assert.equal((await f.t.api('DELETE', `/v1/files/${notes.id}`, { token: u.accessToken })).status, 204);
      const part = await waitFor(async () => {
        const p = (await chat.branch(c)).data[0].content[1];
        return p.deleted ? p : undefined;
      }, 'the file part marked deleted');
      assert.deepEqual(part, { type: 'file', fileId: notes.id, name: 'minutes.txt', mimeType: 'text/plain', size: 32, deleted: true });
      const next = await chat.send(c, { content: 'What did we decide?' });
      assert.equal(next.status, 201, next.text);
      const history = answerRequests(f.openai).at(-1)!.body.messages.map((m: { content: unknown }) => asText(m.content)).join('\n');
      assert.match(history, /\[file minutes\.txt was deleted; its contents are no longer available\]/);
      assert.doesNotMatch(history, /launch to May/);
    });

    test('the gateway passes image_url parts through unchanged, and refuses them for a model that cannot see', async () => {
      const parts = [
        { type: 'text', text: 'Compare these' },
        { type: 'image_url', image_url: { url: PNG_URL, detail: 'low' } },
        { type: 'image_url', image_url: { url: 'https://example.com/cat.png' } },
      ];
      const res = await f.t.api('POST', '/v1/chat/completions', { token: u.accessToken, body: { model: 'openai:gpt-4o-mini', messages: [{ role: 'user', content: parts }] } });
      assert.equal(res.status, 200, res.text);
      assert.deepEqual(f.openai.requests.at(-1)!.body.messages.at(-1), { role: 'user', content: parts });

      f.openai.reset();
      const blind = await f.t.api('POST', '/v1/chat/completions', { token: u.accessToken, body: { model: 'openai:gpt-3.5-turbo', messages: [{ role: 'user', content: parts }] } });
      assert.equal(blind.status, 400, blind.text);
      assert.equal(blind.body.error.code, 'model_cannot_see_images');
      assert.equal(f.openai.requests.length, 0);
    });
  });
}
