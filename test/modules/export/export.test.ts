import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { sql } from 'drizzle-orm';
import { chatExport } from '../../../src/modules/chat/export.ts';
import { documentsExport } from '../../../src/modules/documents/export.ts';
import type { ExportSource } from '../../../src/modules/export/index.ts';
import { backends, startApp, type TestApp } from '../../support/app.ts';
import { createUser, type TestUser } from '../../support/factories.ts';
import { startFakeOpenAI, type FakeOpenAI } from '../../support/fake-openai.ts';
import { PNG, uploadFile } from '../../support/files.ts';
import { startS3, type LocalS3 } from '../../support/s3.ts';
import { unzip } from '../../support/zip.ts';

/** What a source writes for a user, its later entries made in order as the zip makes them; `deferred`: how many waited. */
async function collectEntries(source: ExportSource, userId: string) {
  const written = new Map<string, unknown>();
  const later: Array<[string, () => Promise<unknown>, boolean]> = [];
  const archive = {
    json: (path: string, value: unknown) => written.set(path, JSON.parse(JSON.stringify(value))),
    later: (path: string, value: () => Promise<unknown>, o?: { text?: boolean }) => later.push([path, value, Boolean(o?.text)]),
    text: (path: string, value: string) => written.set(path, value),
    file() {},
  };
  await source.write(userId, archive);
  const deferred = later.length;
  for (const [path, value, text] of later) written.set(path, text ? await value() : JSON.parse(JSON.stringify(await value())));
  return { written, deferred };
}

const json = (entries: Map<string, Buffer>, path: string) => {
  const b = entries.get(path);
  assert.ok(b, `${path} is in the archive (${[...entries.keys()].join(', ')})`);
  return JSON.parse(b.toString('utf8'));
};

for (const backend of backends()) {
  describe(`data export [${backend}]`, () => {
    let t: TestApp;
    let openai: FakeOpenAI;
    let s3: LocalS3 | undefined;
    let u: TestUser;
    let stranger: TestUser;
    before(async () => {
      openai = await startFakeOpenAI();
      // Distributed deployments keep files in S3: the export reads them from there.
      s3 = backend === 'postgres' ? await startS3() : undefined;
      t = await startApp({ backend, env: { ...openai.env, ...s3?.env, DEFAULT_MODEL: 'openai:gpt-4o-mini', AI_RETRIES: '0' } });
      u = await createUser(t, { name: 'Ada Export' });
      stranger = await createUser(t);
    });
    after(async () => {
      await t.close();
      await openai.close();
      await s3?.close();
    });

    const download = (token?: string) => fetch(`${t.url}/v1/users/me/export`, { headers: token ? { authorization: `Bearer ${token}` } : {} });

    /** One folder of the user's download: each entry's path under it, and its JSON (or text). */
    const downloadedFolder = async (user: TestUser, folder: string) => {
      const entries = await unzip(Buffer.from(await (await download(user.accessToken)).arrayBuffer()));
      const parse = (path: string, b: Buffer) => (path.endsWith('.json') ? JSON.parse(b.toString('utf8')) : b.toString('utf8'));
      return new Map([...entries].filter(([path]) => path.startsWith(`${folder}/`)).map(([path, b]) => [path.slice(folder.length + 1), parse(path, b)]));
    };

    test('a zip of everything the user has: profile, every branch of every conversation, documents with versions and comments, file bytes, projects, keys without secrets; nothing of anyone else', async () => {
      const as = { token: u.accessToken };
      const project = await t.api('POST', '/v1/projects', { ...as, body: { name: 'Tutor', systemPrompt: 'Be kind.' } });
      assert.equal(project.status, 201, JSON.stringify(project.body));
      const conv = await t.api('POST', '/v1/conversations', { ...as, body: { title: 'Branches', projectId: project.body.id } });
      openai.script({ reply: 'First answer' });
      const first = await t.api('POST', `/v1/conversations/${conv.body.id}/messages`, { ...as, body: { content: 'Question one' } });
      assert.equal(first.status, 201, JSON.stringify(first.body));
      openai.script({ reply: 'Second answer' });
      const again = await t.api('POST', `/v1/conversations/${conv.body.id}/messages/${first.body.id}/regenerate`, { ...as, body: {} });
      assert.equal(again.status, 201, JSON.stringify(again.body));
      const thumbs = await t.api('PUT', `/v1/conversations/${conv.body.id}/messages/${again.body.id}/feedback`, { ...as, body: { rating: 'up' } });
      assert.ok(thumbs.status < 300, JSON.stringify(thumbs.body));

      const doc = await t.api('POST', '/v1/documents', { ...as, body: { title: 'Notes / plans', body: 'Version one' } });
      assert.equal(doc.status, 201, JSON.stringify(doc.body));
      const saved = await t.api('PUT', `/v1/documents/${doc.body.id}`, { ...as, body: { body: 'Version two', baseVersion: 1 } });
      assert.equal(saved.status, 200, JSON.stringify(saved.body));
      const comment = await t.api('POST', `/v1/documents/${doc.body.id}/comments`, { ...as, body: { body: 'Check this', quote: 'Version two' } });
      assert.equal(comment.status, 201, JSON.stringify(comment.body));
      const file = await uploadFile(t, u, 'photo.png', PNG);
      const key = await t.api('POST', '/v1/api-keys', { ...as, body: { name: 'laptop', scopes: ['chat'] } });
      assert.equal(key.status, 201, JSON.stringify(key.body));
      const theirs = await t.api('POST', '/v1/conversations', { token: stranger.accessToken, body: { title: 'Not yours to export' } });

      const res = await download(u.accessToken);
      assert.equal(res.status, 200, await res.clone().text());
      assert.equal(res.headers.get('content-type'), 'application/zip');
      assert.match(res.headers.get('content-disposition')!, /^attachment; filename="parley-export-\d{4}-\d{2}-\d{2}\.zip"$/);
      const raw = Buffer.from(await res.arrayBuffer());
      const entries = await unzip(raw);

      const manifest = json(entries, 'manifest.json');
      assert.equal(manifest.format, 1);
      assert.equal(manifest.userId, u.id);
      assert.deepEqual([...manifest.entries].sort(), [...entries.keys()].sort(), 'the manifest names every entry, itself and missing.json too');
      assert.deepEqual(json(entries, 'missing.json'), { missing: [] });

      const profile = json(entries, 'users/profile.json');
      assert.equal(profile.email, u.email);
      assert.equal(profile.name, 'Ada Export');
      assert.equal(profile.passwordHash, undefined);

      const conversations = json(entries, 'chat/conversations.json');
      assert.deepEqual(conversations.map((c: any) => c.title), ['Branches']);
      const full = json(entries, `chat/conversations/${conv.body.id}.json`);
      assert.equal(full.projectId, project.body.id);
      const byId = new Map(full.messages.map((m: any) => [m.id, m]));
      const answers = full.messages.filter((m: any) => m.role === 'assistant');
      assert.deepEqual(answers.map((m: any) => m.content[0].text).sort(), ['First answer', 'Second answer'], 'both branches');
      assert.ok(answers.every((m: any) => (byId.get(m.parentId) as any)?.content[0].text === 'Question one'), 'each answer names its question');
      assert.deepEqual((byId.get(again.body.id) as any).feedback, { rating: 'up', comment: null });

      const documentJson = json(entries, `documents/${doc.body.id}/document.json`);
      assert.deepEqual(documentJson.versions.map((v: any) => v.body), ['Version one', 'Version two']);
      assert.deepEqual(documentJson.comments.map((c: any) => c.body), ['Check this']);
      assert.equal(entries.get(`documents/${doc.body.id}/Notes _ plans.md`)?.toString('utf8'), 'Version two', 'the title cannot make a path');

      const files = json(entries, 'files/index.json');
      assert.equal(files.length, 1);
      assert.equal(files[0].sha256, createHash('sha256').update(PNG).digest('hex'));
      assert.deepEqual(entries.get(`files/${file.id}/photo.png`), PNG, 'the bytes, byte for byte');

      const projects = json(entries, 'projects/projects.json');
      assert.deepEqual(projects.map((p: any) => p.prompts.map((x: any) => x.content)), [['Be kind.']]);
      const keys = json(entries, 'api-keys/keys.json');
      assert.deepEqual(keys.map((k: any) => [k.name, k.scopes]), [['laptop', ['chat']]]);
      assert.ok(!raw.includes(Buffer.from(key.body.key)), 'the key itself is never exported');
      assert.ok(!JSON.stringify(keys).includes('keyHash'));
      assert.ok(Array.isArray(json(entries, 'notifications/notifications.json')));
      assert.ok(Array.isArray(json(entries, 'knowledge/collections.json')));

      const everything = [...entries.values()].map((b) => b.toString('latin1')).join('\n');
      assert.ok(!everything.includes(theirs.body.id) && !everything.includes('Not yours to export'), "another user's data is not in it");
    });

    test('a file whose bytes are gone from storage is named in missing.json; the rest still downloads', async () => {
      const v = await createUser(t);
      const kept = await uploadFile(t, v, 'kept.txt', 'still here');
      const lost = await uploadFile(t, v, 'lost.txt', 'gone soon');
      for (const k of await t.deps.storage.keys(`files/${v.id}/`)) {
        if (k.includes(lost.id)) await t.deps.storage.delete(k);
      }
      const res = await download(v.accessToken);
      assert.equal(res.status, 200);
      const entries = await unzip(Buffer.from(await res.arrayBuffer()));
      assert.equal(entries.get(`files/${kept.id}/kept.txt`)?.toString(), 'still here');
      assert.deepEqual(json(entries, 'missing.json'), { missing: [`files/${lost.id}/lost.txt`] });
      assert.equal(entries.get(`files/${lost.id}/lost.txt`)?.length, 0);
    });

    test('a long name is cut whole: its entry is named in the zip exactly as in the manifest and the files index', async () => {
      const w = await createUser(t);
      const doc = await t.api('POST', '/v1/documents', { token: w.accessToken, body: { title: `${'a'.repeat(149)}😀tail`, body: 'x' } });
      assert.equal(doc.status, 201, doc.text);
      await uploadFile(t, w, `${'b'.repeat(149)}😀.txt`, 'emoji name');
      const entries = await unzip(Buffer.from(await (await download(w.accessToken)).arrayBuffer()));
      const names = [...entries.keys()];
      assert.ok(names.every((n) => n.isWellFormed() && !n.includes('\uFFFD')), `no name broken: ${names.filter((n) => n.includes('\uFFFD'))}`);
      assert.deepEqual([...json(entries, 'manifest.json').entries].sort(), [...names].sort());
    });

    test('conversations are read a batch and a page at a time, as the zip reaches them: small batches and pages write the same entries as the download, empty conversations too', async () => {
      const x = await createUser(t);
      const as = { token: x.accessToken };
      const ids: string[] = [];
      for (const turns of [0, 1, 2, 0, 3]) {
        const c = await t.api('POST', '/v1/conversations', { ...as, body: { title: `${turns} turns` } });
        ids.push(c.body.id);
        for (let i = 0; i < turns; i++) {
          openai.script({ reply: `Answer ${i}` });
          const m = await t.api('POST', `/v1/conversations/${c.body.id}/messages`, { ...as, body: { content: `Question ${i}` } });
          assert.equal(m.status, 201, m.text);
          if (i === 1) await t.api('PUT', `/v1/conversations/${c.body.id}/messages/${m.body.id}/feedback`, { ...as, body: { rating: 'down', comment: 'meh' } });
        }
      }
      const collect = async (opts: { batch: number; page: number }) => {
        const { written, deferred } = await collectEntries(chatExport(t.deps.db, opts), x.id);
        // Nothing of the conversations is read before the archive reaches it: a long history is never held whole.
        assert.deepEqual(deferred, ids.length + 1);
        return written;
      };
      const downloaded = await downloadedFolder(x, 'chat');
      assert.equal(downloaded.size, ids.length + 1);
      assert.deepEqual(
        (downloaded.get('conversations.json') as any[]).map((c) => c.messages),
        [0, 2, 4, 0, 6],
      );
      for (const opts of [{ batch: 2, page: 3 }, { batch: 1, page: 1 }, { batch: 3, page: 2 }]) {
        assert.deepEqual(await collect(opts), downloaded, JSON.stringify(opts));
      }
      const rated = (downloaded.get(`conversations/${ids[4]}.json`) as any).messages.filter((m: any) => m.feedback);
      assert.deepEqual(rated.map((m: any) => m.feedback), [{ rating: 'down', comment: 'meh' }]);
    });

    test('documents are read a batch at a time, as the zip reaches them: small batches write the same entries as the download', async () => {
      const x = await createUser(t);
      const as = { token: x.accessToken };
      for (const [n, title] of ['Plan', 'Notes', 'Log'].entries()) {
        const doc = await t.api('POST', '/v1/documents', { ...as, body: { title, body: `${title} v1` } });
        for (let v = 1; v <= n; v++) assert.equal((await t.api('PUT', `/v1/documents/${doc.body.id}`, { ...as, body: { body: `${title} v${v + 1}`, baseVersion: v } })).status, 200);
        if (n !== 1) {
          const comment = await t.api('POST', `/v1/documents/${doc.body.id}/comments`, { ...as, body: { body: `About ${title}`, quote: title } });
          assert.equal(comment.status, 201, comment.text);
        }
      }
      const downloaded = await downloadedFolder(x, 'documents');
      assert.equal(downloaded.size, 3 * 2 + 1);
      for (const batch of [1, 2]) {
        const { written, deferred } = await collectEntries(documentsExport(t.deps.db, { batch }), x.id);
        assert.equal(deferred, 3 * 2, 'bodies, versions and comments wait for the archive');
        assert.deepEqual(written, downloaded, `batch ${batch}`);
      }
      const log = [...downloaded.values()].find((v: any) => v?.title === 'Log') as any;
      assert.deepEqual([log.body, log.versions.map((v: any) => v.body), log.comments.map((c: any) => c.body)], ['Log v3', ['Log v1', 'Log v2', 'Log v3'], ['About Log']]);
    });

    // The query's shape is the same on both backends; 70,000 rows take PGlite several seconds more, so once is enough.
    test('more projects than PostgreSQL takes parameters (70,000): every one is exported with its own prompts', { skip: backend !== backends().at(-1) && 'checked on the last backend only' }, async () => {
      const x = await createUser(t);
      // Their prompts were read by a list of every project's id, one parameter each: past 65,535 the export was a 500.
      await t.deps.db.execute(sql`insert into projects (id, user_id, name) select gen_random_uuid(), ${x.id}::uuid, 'p' || g from generate_series(1, 70000) g`);
      await t.deps.db.execute(sql`insert into project_prompts (id, project_id, name, content) select gen_random_uuid(), id, 'tone', 'Be brief: ' || name from projects where user_id = ${x.id}::uuid and name in ('p1', 'p70000')`);
      const res = await download(x.accessToken);
      assert.equal(res.status, 200);
      const list = json(await unzip(Buffer.from(await res.arrayBuffer())), 'projects/projects.json') as any[];
      assert.equal(list.length, 70_000);
      const prompted = list.filter((p) => p.prompts.length).map((p) => [p.name, p.prompts.map((x: any) => x.content)]);
      assert.deepEqual(prompted.sort(), [['p1', ['Be brief: p1']], ['p70000', ['Be brief: p70000']]]);
    });

    test('sign-in only: no credentials is 401, an API key (even with every scope) is 403, in the problem format', async () => {
      const none = await download();
      assert.equal(none.status, 401);
      assert.match(none.headers.get('content-type')!, /application\/problem\+json/);
      const key = await t.api('POST', '/v1/api-keys', { token: u.accessToken, body: { name: 'all' } });
      const withKey = await download(key.body.key);
      assert.equal(withKey.status, 403);
      assert.equal(((await withKey.json()) as any).code, 'api_key_not_allowed');
    });
  });
}
