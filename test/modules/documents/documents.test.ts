import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { backends, startApp, type TestApp } from '../../support/app.ts';
import { uploadFile } from '../../support/files.ts';
import { eventually } from '../../support/eventually.ts';
import { createUser, type TestUser } from '../../support/factories.ts';

const MAX = 50_000;

for (const backend of backends()) {
  describe(`documents [${backend}]`, () => {
    let t: TestApp;
    let u: TestUser;
    let other: TestUser;
    before(async () => {
      t = await startApp({ backend, env: { DOCUMENTS_MAX_BYTES: String(MAX) } });
      u = await createUser(t);
      other = await createUser(t);
    });
    after(() => t.close());

    const create = async (body: Record<string, unknown>, who = u) => {
      const res = await t.api('POST', '/v1/documents', { token: who.accessToken, body });
      assert.equal(res.status, 201, res.text);
      return res.body;
    };

    test('create, read, list: the title defaults from the body, tags are normalized, version 1 holds the content', async () => {
      const doc = await create({ body: '# Trip plans\n\nZürich → Bern', tags: [' Travel ', 'travel', 'SWISS'] });
      assert.equal(doc.title, 'Trip plans');
      // A bare heading mark names nothing: the next line with words is the title.
      assert.equal((await create({ body: '#\n\nReal content here' })).title, 'Real content here');
      assert.deepEqual(doc.tags, ['travel', 'swiss']);
      assert.equal(doc.version, 1);
      assert.equal(doc.role, 'owner');
      const read = await t.api('GET', `/v1/documents/${doc.id}`, { token: u.accessToken });
      assert.equal(read.status, 200);
      assert.equal(read.body.body, '# Trip plans\n\nZürich → Bern');
      const v1 = await t.api('GET', `/v1/documents/${doc.id}/versions/1`, { token: u.accessToken });
      assert.equal(v1.body.body, doc.body);
      const list = await t.api('GET', '/v1/documents?tag=swiss', { token: u.accessToken });
      assert.deepEqual(list.body.data.map((d: any) => d.id), [doc.id]);
      assert.equal(list.body.data[0].body, undefined, 'lists carry no bodies');
      const theirs = await t.api('GET', '/v1/documents', { token: other.accessToken });
      assert.equal(theirs.body.data.length, 0);
      assert.equal((await t.api('GET', `/v1/documents/${doc.id}`, { token: other.accessToken })).status, 404);
    });

    test('lists are cursor pages, newest first, shared documents among your own', async () => {
      const reader = await createUser(t);
      const own = [await create({ title: 'one' }, reader), await create({ title: 'two' }, reader)];
      const sharedDoc = await create({ title: 'three' });
      await t.api('POST', `/v1/documents/${sharedDoc.id}/shares`, { token: u.accessToken, body: { email: reader.email, role: 'commenter' } });
      const seen: string[] = [];
      let cursor: string | null = null;
      do {
        const res: any = await t.api('GET', `/v1/documents?limit=2${cursor ? `&cursor=${cursor}` : ''}`, { token: reader.accessToken });
        assert.equal(res.status, 200, res.text);
        seen.push(...res.body.data.map((d: any) => d.id));
        cursor = res.body.nextCursor;
      } while (cursor);
      assert.deepEqual(seen, [sharedDoc.id, own[1].id, own[0].id]);
      assert.equal((await t.api('GET', '/v1/documents?cursor=bm90LWEtdXVpZA', { token: reader.accessToken })).status, 400);
    });

    test('own and shared documents interleaved: each page merges both, newest first, each once, every filter on both', async () => {
      const reader = await createUser(t);
      const docs: Array<{ id: string; role: string; tagged: boolean; favorite: boolean }> = [];
      for (let i = 0; i < 8; i++) {
        const mine = i % 2 === 0;
        const tagged = i % 3 !== 1;
        const doc = await create({ title: `mixed ${i}`, tags: tagged ? ['mixed'] : [] }, mine ? reader : u);
        if (!mine) assert.equal((await t.api('POST', `/v1/documents/${doc.id}/shares`, { token: u.accessToken, body: { email: reader.email, role: 'viewer' } })).status, 201);
        const favorite = i % 4 < 2;
        if (favorite) assert.equal((await t.api('PUT', `/v1/documents/${doc.id}/favorite`, { token: reader.accessToken, body: { favorite: true } })).status, 200);
        docs.push({ id: doc.id, role: mine ? 'owner' : 'viewer', tagged, favorite });
      }
      const newestFirst = [...docs].reverse();
      const pages = async (query: string) => {
        const seen: Array<[string, string]> = [];
        let cursor: string | null = null;
        do {
          const res: any = await t.api('GET', `/v1/documents?limit=3${query}${cursor ? `&cursor=${cursor}` : ''}`, { token: reader.accessToken });
          assert.equal(res.status, 200, res.text);
          seen.push(...res.body.data.map((d: any) => [d.id, d.role] as [string, string]));
          cursor = res.body.nextCursor;
        } while (cursor);
        return seen;
      };
      const expect = (keep: (d: (typeof docs)[number]) => boolean) => newestFirst.filter(keep).map((d) => [d.id, d.role]);
      assert.deepEqual(await pages(''), expect(() => true));
      assert.deepEqual(await pages('&tag=mixed'), expect((d) => d.tagged));
      assert.deepEqual(await pages('&favorite=true'), expect((d) => d.favorite));
      assert.deepEqual(await pages('&favorite=false'), expect((d) => !d.favorite));
      assert.deepEqual(await pages('&sharedWithMe=true'), expect((d) => d.role === 'viewer'));
      assert.deepEqual(await pages('&sharedWithMe=false&tag=mixed'), expect((d) => d.role === 'owner' && d.tagged));
    });

    test('a create retried with its Idempotency-Key answers with the first document, and makes no second', async () => {
      const fresh = await createUser(t);
      const send = () => t.api('POST', '/v1/documents', { token: fresh.accessToken, body: { title: 'Once' }, headers: { 'idempotency-key': 'create-once-1' } });
      const [first, retry] = [await send(), await send()];
      assert.equal(first.status, 201, first.text);
      assert.equal(retry.status, 201);
      assert.equal(retry.body.id, first.body.id);
      assert.equal((await t.api('GET', '/v1/documents', { token: fresh.accessToken })).body.data.length, 1);
      const different = await t.api('POST', '/v1/documents', { token: fresh.accessToken, body: { title: 'Other' }, headers: { 'idempotency-key': 'create-once-1' } });
      assert.equal(different.status, 422, 'the same key for another request');
    });

    test('saves make versions; list, read, diff and restore (a restore is a new version)', async () => {
      const doc = await create({ title: 'Notes', body: 'one\ntwo\nthree\n' });
      const s2 = await t.api('PUT', `/v1/documents/${doc.id}`, { token: u.accessToken, body: { body: 'one\nTWO\nthree\n', baseVersion: 1 } });
      assert.equal(s2.status, 200, s2.text);
      assert.equal(s2.body.version, 2);
      const s3 = await t.api('PUT', `/v1/documents/${doc.id}`, { token: u.accessToken, body: { title: 'Notes, final', body: 'one\nTWO\nthree\nfour\n', baseVersion: 2 } });
      assert.equal(s3.body.version, 3);
      const versions = await t.api('GET', `/v1/documents/${doc.id}/versions?limit=2`, { token: u.accessToken });
      assert.deepEqual(versions.body.data.map((v: any) => v.number), [3, 2]);
      assert.equal(versions.body.data[0].bytes, Buffer.byteLength('one\nTWO\nthree\nfour\n'));
      const rest = await t.api('GET', `/v1/documents/${doc.id}/versions?limit=2&cursor=${versions.body.nextCursor}`, { token: u.accessToken });
      assert.deepEqual(rest.body.data.map((v: any) => v.number), [1]);
      assert.equal(rest.body.nextCursor, null);

      const diff = await t.api('GET', `/v1/documents/${doc.id}/diff?from=1&to=3`, { token: u.accessToken });
      assert.equal(diff.status, 200, diff.text);
      assert.equal(diff.body.diff, '--- v1\n+++ v3\n@@ -1,4 +1,5 @@\n one\n-two\n+TWO\n three\n+four\n \n');
      assert.deepEqual([diff.body.added, diff.body.removed, diff.body.titleChanged], [2, 1, true]);
      assert.equal((await t.api('GET', `/v1/documents/${doc.id}/diff?from=1&to=9`, { token: u.accessToken })).status, 404);

      // No body at all: restore whatever the document's version now (the body is optional).
      const restored = await t.api('POST', `/v1/documents/${doc.id}/versions/1/restore`, { token: u.accessToken });
      assert.equal(restored.status, 200, restored.text);
      assert.equal(restored.body.version, 4);
      assert.equal(restored.body.body, 'one\ntwo\nthree\n');
      assert.equal(restored.body.title, 'Notes');
      const v4 = await t.api('GET', `/v1/documents/${doc.id}/versions/4`, { token: u.accessToken });
      assert.equal(v4.body.restoredFrom, 1);
      const v3 = await t.api('GET', `/v1/documents/${doc.id}/versions/3`, { token: u.accessToken });
      assert.equal(v3.body.body, 'one\nTWO\nthree\nfour\n', 'older versions stay as they were');
      const stale = await t.api('POST', `/v1/documents/${doc.id}/versions/2/restore`, { token: u.accessToken, body: { baseVersion: 3 } });
      assert.equal(stale.status, 409);
    });

    test('a stale save is a 409 with the current version, and nothing is lost', async () => {
      const doc = await create({ title: 'Shared draft', body: 'base' });
      const mine = await t.api('PUT', `/v1/documents/${doc.id}`, { token: u.accessToken, body: { body: 'mine', baseVersion: 1 } });
      assert.equal(mine.status, 200);
      const theirs = await t.api('PUT', `/v1/documents/${doc.id}`, { token: u.accessToken, body: { body: 'theirs', baseVersion: 1 } });
      assert.equal(theirs.status, 409);
      assert.equal(theirs.headers.get('content-type'), 'application/problem+json; charset=utf-8');
      assert.equal(theirs.body.code, 'version_conflict');
      assert.equal(theirs.body.currentVersion.number, 2);
      assert.equal(theirs.body.currentVersion.body, 'mine');
      const now = await t.api('GET', `/v1/documents/${doc.id}`, { token: u.accessToken });
      assert.equal(now.body.body, 'mine');
      assert.equal(now.body.version, 2);
      const future = await t.api('PUT', `/v1/documents/${doc.id}`, { token: u.accessToken, body: { body: 'x', baseVersion: 7 } });
      assert.equal(future.status, 409, 'a base that never existed is as stale');
    });

    test('concurrent saves from one base: exactly one wins, the others get 409, every version is whole', async () => {
      const doc = await create({ title: 'Race', body: 'start' });
      const results = await Promise.all(
        Array.from({ length: 6 }, (_, i) => t.api('PUT', `/v1/documents/${doc.id}`, { token: u.accessToken, body: { body: `edit ${i}`, baseVersion: 1 } })),
      );
      const statuses = results.map((r) => r.status).sort();
      assert.deepEqual(statuses, [200, 409, 409, 409, 409, 409], results.map((r) => r.text).join('\n'));
      const winner = results.find((r) => r.status === 200)!.body;
      const versions = await t.api('GET', `/v1/documents/${doc.id}/versions`, { token: u.accessToken });
      assert.deepEqual(versions.body.data.map((v: any) => v.number), [2, 1]);
      const now = await t.api('GET', `/v1/documents/${doc.id}`, { token: u.accessToken });
      assert.equal(now.body.body, winner.body);
      for (const loser of results.filter((r) => r.status === 409)) assert.equal(loser.body.currentVersion.body, winner.body);
    });

    test('bad input gets a clear 4xx and leaves the stored document as it was', async () => {
      const doc = await create({ title: 'Keep me', body: 'safe' });
      const put = (body: unknown) => t.api('PUT', `/v1/documents/${doc.id}`, { token: u.accessToken, body });

      const huge = await put({ body: 'x'.repeat(MAX + 1), baseVersion: 1 });
      assert.equal(huge.status, 413);
      assert.equal(huge.body.code, 'document_too_large');
      const multibyte = await put({ body: 'ü'.repeat(MAX / 2), baseVersion: 1 });
      assert.equal(multibyte.status, 413, 'bytes are counted, not characters');
      const enormous = await t.api('PUT', `/v1/documents/${doc.id}`, { token: u.accessToken, raw: JSON.stringify({ body: 'y'.repeat(5 * MAX), baseVersion: 1 }) });
      assert.equal(enormous.status, 413, 'past the request limit too');
      assert.equal((await t.api('POST', '/v1/documents', { token: u.accessToken, body: { title: 'big', body: 'z'.repeat(MAX) } })).status, 413);

      const nul = await put({ body: 'a\u0000b', baseVersion: 1 });
      assert.equal(nul.status, 400);
      const binary = await put({ body: 'PK\u0003\u0004\u0014\u0000'.replace('\u0000', '') + '\u0001\u0002', baseVersion: 1 });
      assert.equal(binary.status, 400);
      assert.equal(binary.body.code, 'binary_content');
      assert.equal((await put({ title: '   ', baseVersion: 1 })).status, 400, 'a blank title');
      assert.equal((await put({ baseVersion: 1 })).status, 400, 'a save that changes nothing named');
      assert.equal((await put({ body: 'x', baseVersion: 0 })).status, 400);
      assert.equal((await put({ body: 'x' })).status, 400, 'no base version');
      assert.equal((await put({ body: 'x', baseVersion: 1, extra: true })).status, 400);
      // Numbers past a 32-bit column: 400, never a database error.
      const big = 99_999_999_999;
      assert.equal((await put({ body: 'x', baseVersion: big })).status, 400);
      assert.equal((await t.api('GET', `/v1/documents/${doc.id}/versions/${big}`, { token: u.accessToken })).status, 400);
      assert.equal((await t.api('GET', `/v1/documents/${doc.id}/diff?from=1&to=${big}`, { token: u.accessToken })).status, 400);
      assert.equal((await t.api('POST', `/v1/documents/${doc.id}/versions/1/restore`, { token: u.accessToken, body: { baseVersion: big } })).status, 400);
      const cursor = Buffer.from(String(big)).toString('base64url');
      assert.equal((await t.api('GET', `/v1/documents/${doc.id}/versions?cursor=${cursor}`, { token: u.accessToken })).status, 400);

      const empty = await t.api('POST', '/v1/documents', { token: u.accessToken, body: { body: '  \n ' } });
      assert.equal(empty.status, 400);
      assert.equal(empty.body.code, 'empty_document');
      assert.equal((await t.api('POST', '/v1/documents', { token: u.accessToken, body: {} })).status, 400);
      assert.equal((await t.api('POST', '/v1/documents', { token: u.accessToken, body: { title: 't', tags: Array.from({ length: 21 }, (_, i) => `t${i}`) } })).status, 400);
      assert.equal((await t.api('POST', '/v1/documents', { token: u.accessToken, body: { title: 't', tags: ['x'.repeat(51)] } })).status, 400);
      // A tag is one line, as a name is: no line breaks, control characters or direction overrides.
      for (const bad of ['a\nb', 'tab\there', 'bell\u0007', 'rtl\u202Egpj.exe']) {
        const res = await t.api('POST', '/v1/documents', { token: u.accessToken, body: { title: 't', tags: [bad] } });
        assert.equal(res.status, 400, JSON.stringify(bad));
        assert.match(res.body.detail, /one line/);
      }

      const now = await t.api('GET', `/v1/documents/${doc.id}`, { token: u.accessToken });
      assert.equal(now.body.body, 'safe');
      assert.equal(now.body.version, 1);
      // A titled empty document is fine: it is something to write in.
      assert.equal((await t.api('POST', '/v1/documents', { token: u.accessToken, body: { title: 'Blank' } })).status, 201);
    });

    test('templates: start a document from one you can read; not from a plain document or a stranger\'s', async () => {
      const template = await create({ title: 'Meeting notes', body: '## Agenda\n\n## Decisions\n', tags: ['meeting'], isTemplate: true });
      const started = await create({ templateId: template.id });
      assert.deepEqual([started.title, started.body, started.tags, started.isTemplate, started.version], ['Meeting notes', '## Agenda\n\n## Decisions\n', ['meeting'], false, 1]);
      const renamed = await create({ templateId: template.id, title: 'Standup 12 May' });
      assert.equal(renamed.title, 'Standup 12 May');
      const templates = await t.api('GET', '/v1/documents?template=true', { token: u.accessToken });
      assert.deepEqual(templates.body.data.map((d: any) => d.id), [template.id]);
      const plain = await create({ title: 'Plain', body: 'x' });
      const notTemplate = await t.api('POST', '/v1/documents', { token: u.accessToken, body: { templateId: plain.id } });
      assert.equal(notTemplate.status, 400);
      assert.equal(notTemplate.body.code, 'not_a_template');
      assert.equal((await t.api('POST', '/v1/documents', { token: other.accessToken, body: { templateId: template.id } })).status, 404);
    });

    test('a document in one of your projects is listed by it; another user\'s project is not found', async () => {
      const project = await t.api('POST', '/v1/projects', { token: u.accessToken, body: { name: 'Docs project' } });
      const theirs = await t.api('POST', '/v1/projects', { token: other.accessToken, body: { name: 'Theirs' } });
      const inProject = await create({ title: 'Spec', projectId: project.body.id });
      await create({ title: 'Elsewhere' });
      const listed = await t.api('GET', `/v1/documents?projectId=${project.body.id}`, { token: u.accessToken });
      assert.deepEqual(listed.body.data.map((d: any) => d.id), [inProject.id]);
      const foreign = await t.api('POST', '/v1/documents', { token: u.accessToken, body: { title: 'x', projectId: theirs.body.id } });
      assert.equal(foreign.status, 404);
      assert.equal(foreign.body.code, 'project_not_found');
      assert.equal((await t.api('PATCH', `/v1/documents/${inProject.id}`, { token: u.accessToken, body: { projectId: theirs.body.id } })).status, 404);
      const detached = await t.api('PATCH', `/v1/documents/${inProject.id}`, { token: u.accessToken, body: { projectId: null } });
      assert.equal(detached.body.projectId, null);
    });

    test('archive, favorites and recents are filters; favorites and recents are each reader\'s own', async () => {
      const a = await create({ title: 'A', body: 'a' });
      const b = await create({ title: 'B', body: 'b' });
      const archived = await t.api('PATCH', `/v1/documents/${a.id}`, { token: u.accessToken, body: { archived: true, tags: ['Old'] } });
      assert.equal(archived.status, 200, archived.text);
      assert.deepEqual(archived.body.tags, ['old']);
      const active = await t.api('GET', '/v1/documents?limit=100', { token: u.accessToken });
      assert.ok(!active.body.data.some((d: any) => d.id === a.id));
      const onlyArchived = await t.api('GET', '/v1/documents?archived=true', { token: u.accessToken });
      assert.deepEqual(onlyArchived.body.data.map((d: any) => d.id), [a.id]);

      const shared = await t.api('POST', `/v1/documents/${b.id}/shares`, { token: u.accessToken, body: { email: other.email, role: 'viewer' } });
      assert.equal(shared.status, 201, shared.text);
      const fav = await t.api('PUT', `/v1/documents/${b.id}/favorite`, { token: other.accessToken, body: { favorite: true } });
      assert.equal(fav.status, 200, fav.text);
      assert.equal(fav.body.favorite, true);
      const theirFavs = await t.api('GET', '/v1/documents?favorite=true', { token: other.accessToken });
      assert.deepEqual(theirFavs.body.data.map((d: any) => d.id), [b.id]);
      const myFavs = await t.api('GET', '/v1/documents?favorite=true', { token: u.accessToken });
      assert.deepEqual(myFavs.body.data, [], "another reader's favorite is not mine");
      const sharedWithThem = await t.api('GET', '/v1/documents?sharedWithMe=true', { token: other.accessToken });
      assert.deepEqual(sharedWithThem.body.data.map((d: any) => [d.id, d.role]), [[b.id, 'viewer']]);

      await t.api('GET', `/v1/documents/${b.id}`, { token: u.accessToken });
      await t.api('GET', `/v1/documents/${a.id}`, { token: u.accessToken });
      const c = await create({ title: 'C', body: 'c' });
      await t.api('GET', `/v1/documents/${c.id}`, { token: u.accessToken });
      const recent = await t.api('GET', '/v1/documents/recent?limit=5', { token: u.accessToken });
      assert.deepEqual(recent.body.data.slice(0, 2).map((d: any) => d.id), [c.id, b.id], 'newest first; archived ones left out');
      await t.api('GET', `/v1/documents/${b.id}`, { token: other.accessToken });
      const theirRecent = await t.api('GET', '/v1/documents/recent', { token: other.accessToken });
      assert.deepEqual(theirRecent.body.data.map((d: any) => d.id), [b.id]);
      // Once the share is gone, so is the document from their recents.
      assert.equal((await t.api('DELETE', `/v1/documents/${b.id}/shares/${other.id}`, { token: u.accessToken })).status, 204);
      assert.deepEqual((await t.api('GET', '/v1/documents/recent', { token: other.accessToken })).body.data, []);
    });

    test('attachments: your own file, not someone else\'s (404); a deleted file is detached', async () => {
      const doc = await create({ title: 'With files', body: 'see attached' });
      const upload = async (who: TestUser, text: string) => (await uploadFile(t, who, 'notes.txt', text)).id;
      const mine = await upload(u, 'my notes');
      const theirs = await upload(other, 'their notes');
      const attached = await t.api('POST', `/v1/documents/${doc.id}/attachments`, { token: u.accessToken, body: { fileId: mine } });
      assert.equal(attached.status, 201, attached.text);
      assert.deepEqual([attached.body.fileId, attached.body.name, attached.body.mimeType, attached.body.size], [mine, 'notes.txt', 'text/plain', 8]);
      assert.equal((await t.api('POST', `/v1/documents/${doc.id}/attachments`, { token: u.accessToken, body: { fileId: mine } })).status, 409);
      const foreign = await t.api('POST', `/v1/documents/${doc.id}/attachments`, { token: u.accessToken, body: { fileId: theirs } });
      assert.equal(foreign.status, 404);
      assert.equal(foreign.body.code, 'file_not_found');
      const list = await t.api('GET', `/v1/documents/${doc.id}/attachments`, { token: u.accessToken });
      assert.deepEqual(list.body.data.map((a: any) => a.fileId), [mine]);

      assert.equal((await t.api('DELETE', `/v1/files/${mine}`, { token: u.accessToken })).status, 204);
      await eventually(async () => assert.deepEqual((await t.api('GET', `/v1/documents/${doc.id}/attachments`, { token: u.accessToken })).body.data, []));
    });

    test('delete: owner only; versions go with it; the footprint counts documents and versions', async () => {
      const fresh = await createUser(t);
      const doc = await create({ title: 'Täglich', body: 'üben' }, fresh);
      await t.api('PUT', `/v1/documents/${doc.id}`, { token: fresh.accessToken, body: { body: 'üben!', baseVersion: 1 } });
      const report = await t.services.footprint.of(fresh.id);
      const bySource = Object.fromEntries(report.sources.map((s) => [s.source, [s.items, s.bytes]]));
      assert.deepEqual(bySource.documents, [1, Buffer.byteLength('Täglichüben!')]);
      assert.deepEqual(bySource.document_versions, [2, Buffer.byteLength('Täglichüben') + Buffer.byteLength('Täglichüben!')]);
      assert.equal((await t.api('DELETE', `/v1/documents/${doc.id}`, { token: u.accessToken })).status, 404);
      assert.equal((await t.api('DELETE', `/v1/documents/${doc.id}`, { token: fresh.accessToken })).status, 204);
      assert.equal((await t.api('GET', `/v1/documents/${doc.id}/versions`, { token: fresh.accessToken })).status, 404);
    });
  });
}
