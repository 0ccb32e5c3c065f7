import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { Agent, fetch as undiciFetch } from 'undici';
import { backends, startApp, type Backend, type TestApp } from '../../support/app.ts';
import { PNG, postFile } from '../../support/files.ts';
import { eventually } from '../../support/eventually.ts';
import { createUser, type TestUser } from '../../support/factories.ts';
import { startS3, type LocalS3 } from '../../support/s3.ts';
import { connectAs, subscribe } from '../../support/ws.ts';

const PDF = Buffer.from('%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n');
const MAX = 300_000;
const QUOTA = 700_000;

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

const get = (t: TestApp, u: TestUser, path: string, headers: Record<string, string> = {}) => fetch(`${t.url}${path}`, { headers: { authorization: `Bearer ${u.accessToken}`, ...headers } });

/** Blobs and rows under the user: what a refused upload must not leave behind. */
async function stored(t: TestApp, u: TestUser) {
  const list = await t.api('GET', '/v1/files?limit=100', { token: u.accessToken });
  return { rows: list.body.data.length, blobs: (await t.deps.storage.keys(`files/${u.id}/`)).length };
}

const setups: Array<{ name: string; backend: Backend; s3?: boolean }> = [
  ...backends().map((backend) => ({ name: backend, backend })),
  { name: 'embedded, S3 storage', backend: 'embedded', s3: true },
];

for (const setup of setups) {
  describe(`files [${setup.name}]`, () => {
    let t: TestApp;
    let s3: LocalS3 | undefined;
    let u: TestUser;
    let stranger: TestUser;
    before(async () => {
      s3 = setup.s3 ? await startS3() : undefined;
      t = await startApp({ backend: setup.backend, env: { FILES_MAX_BYTES: String(MAX), FILES_QUOTA_BYTES: String(QUOTA), ...s3?.env } });
      u = await createUser(t);
      stranger = await createUser(t);
    });
    after(async () => {
      await t.close();
      await s3?.close();
    });

    test('an image is stored as its bytes say, hashed, and comes back byte for byte', async () => {
      const res = await postFile(t, u, 'photo.png', PNG, {}, 'text/html');
      assert.equal(res.status, 201, res.text);
      assert.equal(res.body.mimeType, 'image/png', 'the type is sniffed, not the client\'s');
      assert.equal(res.body.size, PNG.length);
      assert.equal(res.body.sha256, sha(PNG));
      assert.equal(res.body.name, 'photo.png');
      const content = await get(t, u, `/v1/files/${res.body.id}/content`);
      assert.equal(content.status, 200);
      assert.equal(content.headers.get('content-type'), 'image/png');
      assert.equal(content.headers.get('x-content-type-options'), 'nosniff');
      assert.match(content.headers.get('content-security-policy')!, /sandbox/);
      assert.match(content.headers.get('content-disposition')!, /^inline; filename="photo.png"/);
      assert.deepEqual(Buffer.from(await content.arrayBuffer()), PNG);
    });

    test("text comes back declared UTF-8, and a name with an apostrophe keeps its UTF-8 form (RFC 8187 attr-chars only)", async () => {
      const up = await postFile(t, u, "naïve's (draft)!.txt", Buffer.from('héllo שלום 👋'));
      assert.equal(up.status, 201, up.text);
      const content = await get(t, u, `/v1/files/${up.body.id}/content`);
      assert.equal(content.headers.get('content-type'), 'text/plain; charset=utf-8');
      assert.equal(content.headers.get('content-disposition'), `inline; filename="na_ve's (draft)!.txt"; filename*=UTF-8''na%C3%AFve%27s%20%28draft%29%21.txt`);
      assert.equal(await content.text(), 'héllo שלום 👋');
    });

    test('Range gives 206 with those bytes; the ETag gives 304; a range past the end is 416', async () => {
      const data = randomBytes(5000);
      const up = await postFile(t, u, 'data.csv', Buffer.from(data.toString('hex')));
      assert.equal(up.status, 201, up.text);
      assert.equal(up.body.mimeType, 'text/csv', 'text, and a .csv name: CSV');
      const partial = await get(t, u, `/v1/files/${up.body.id}/content`, { range: 'bytes=10-19' });
      assert.equal(partial.status, 206);
      assert.equal(partial.headers.get('content-range'), `bytes 10-19/${up.body.size}`);
      assert.equal(await partial.text(), data.toString('hex').slice(10, 20));
      const etag = partial.headers.get('etag')!;
      assert.equal((await get(t, u, `/v1/files/${up.body.id}/content`, { 'if-none-match': etag })).status, 304);
      assert.equal((await get(t, u, `/v1/files/${up.body.id}/content`, { 'if-none-match': `"other", W/${etag}` })).status, 304, 'weak comparison');
      // A last byte before the first is no range: ignored, the whole file.
      const inverted = await get(t, u, `/v1/files/${up.body.id}/content`, { range: 'bytes=20-10' });
      assert.equal(inverted.status, 200);
      assert.equal((await inverted.text()).length, up.body.size);
      const past = await get(t, u, `/v1/files/${up.body.id}/content`, { range: `bytes=${up.body.size + 5}-` });
      assert.equal(past.status, 416);
      assert.equal(past.headers.get('content-range'), `bytes */${up.body.size}`);
    });

    test('types: PDF and Markdown are accepted; HTML, SVG, executables and an HTML page named .png are 415 with the detected type, leaving nothing', async () => {
      assert.equal((await postFile(t, u, 'doc.pdf', PDF)).body.mimeType, 'application/pdf');
      assert.equal((await postFile(t, u, 'notes.md', Buffer.from('# Title\n\nSome *text* ✓'))).body.mimeType, 'text/markdown');
      const before = await stored(t, u);
      const cases: Array<[string, Buffer, string]> = [
        ['page.html', Buffer.from('<!doctype html><html><script>alert(1)</script></html>'), 'text/html'],
        ['cat.png', Buffer.from('<html><body>not a cat</body></html>'), 'text/html'],
        ['logo.svg', Buffer.from('<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'), 'image/svg+xml'],
        ['tool.exe', Buffer.concat([Buffer.from('MZ'), randomBytes(2000)]), 'application/x-msdownload'],
        ['report.pdf', PNG, 'image/png'],
      ];
      for (const [name, bytes, detected] of cases) {
        const res = await postFile(t, u, name, bytes);
        assert.equal(res.status, 415, `${name}: ${res.text}`);
        assert.equal(res.body.code, 'unsupported_file_type');
        assert.equal(res.body.detectedType, detected, name);
        assert.match(res.headers.get('content-type')!, /problem\+json/);
      }
      assert.deepEqual(await stored(t, u), before, 'no orphan blob or row');
    });

    test('a file over the limit is cut while streaming (413 file_too_large); a zero-byte file is 400; neither leaves anything', async () => {
      const before = await stored(t, u);
      const big = await postFile(t, u, 'big.txt', Buffer.alloc(MAX + 10, 'a'));
      assert.equal(big.status, 413, big.text);
      assert.equal(big.body.code, 'file_too_large');
      const empty = await postFile(t, u, 'empty.txt', Buffer.alloc(0));
      assert.equal(empty.status, 400, empty.text);
      assert.equal(empty.body.code, 'empty_file');
      assert.deepEqual(await stored(t, u), before);
    });

    test('names are for display: paths, NUL and control characters are dropped', async () => {
      const res = await postFile(t, u, '../../etc/\u0000pass\u0007wd.txt', Buffer.from('hello'));
      assert.equal(res.status, 201, res.text);
      assert.equal(res.body.name, 'passwd.txt');
      const renamed = await t.api('PATCH', `/v1/files/${res.body.id}`, { token: u.accessToken, body: { name: 'a/b\\c\u0001.txt' } });
      assert.equal(renamed.status, 200, renamed.text);
      assert.equal(renamed.body.name, 'c.txt');
      // Cut to 255 UTF-16 units, never inside a surrogate pair (which would store U+FFFD).
      const emoji = await postFile(t, u, `${'😀'.repeat(200)}.txt`, Buffer.from('smile'));
      assert.equal(emoji.status, 201, emoji.text);
      assert.equal(emoji.body.name, '😀'.repeat(127));
    });

    test('malformed multipart, a missing file part, or JSON instead are clear 4xx problems, leaving nothing', async () => {
      const before = await stored(t, u);
      const bad = await fetch(`${t.url}/v1/files`, { method: 'POST', headers: { authorization: `Bearer ${u.accessToken}`, 'content-type': 'multipart/form-data; boundary=xyz' }, body: '--xyz\r\nContent-Disposition: form-data; name="file"; filename="a.txt"\r\n\r\nunterminated' });
      assert.equal(bad.status, 400, await bad.clone().text());
      assert.match(bad.headers.get('content-type')!, /problem\+json/);
      assert.equal(((await bad.json()) as { code: string }).code, 'upload_incomplete', 'the body ended before the file did');
      const form = new FormData();
      form.append('other', 'x');
      const missing = await fetch(`${t.url}/v1/files`, { method: 'POST', headers: { authorization: `Bearer ${u.accessToken}` }, body: form });
      assert.equal(missing.status, 400);
      assert.equal(((await missing.json()) as { code: string }).code, 'file_missing');
      const json = await t.api('POST', '/v1/files', { token: u.accessToken, body: { file: 'x' } });
      assert.deepEqual([json.status, json.body.code], [415, 'unsupported_media_type'], json.text);
      assert.match(json.headers.get('content-type')!, /problem\+json/);
      const empty = await fetch(`${t.url}/v1/files`, { method: 'POST', headers: { authorization: `Bearer ${u.accessToken}` } });
      assert.equal(empty.status, 415, 'no body, no type');
      assert.deepEqual(await stored(t, u), before);
    });

    test("a refused upload leaves the connection usable: the rest of its body is read and dropped, and the client's next request on it is answered", { timeout: 60_000 }, async () => {
      // One connection, reused: a body left half-read would hold the next request behind it for good.
      const agent = new Agent({ connections: 1, pipelining: 1 });
      /** A multipart body sent in chunks (no Content-Length: nothing is refused before it is read). */
      const multipart = (fields: Record<string, string>, name: string, bytes: Buffer) => {
        const head = Object.entries(fields).map(([k, v]) => `--b\r\nContent-Disposition: form-data; name="${k}"\r\n\r\n${v}\r\n`).join('');
        const whole = Buffer.concat([Buffer.from(`${head}--b\r\nContent-Disposition: form-data; name="file"; filename="${name}"\r\n\r\n`), bytes, Buffer.from('\r\n--b--\r\n')]);
        return new ReadableStream({
          start(controller) {
            for (let at = 0; at < whole.length; at += 64 * 1024) controller.enqueue(whole.subarray(at, at + 64 * 1024));
            controller.close();
          },
        });
      };
      const send = async (body: ReadableStream) => {
        const res = await undiciFetch(`${t.url}/v1/files`, { method: 'POST', headers: { authorization: `Bearer ${u.accessToken}`, 'content-type': 'multipart/form-data; boundary=b' }, body, duplex: 'half', dispatcher: agent });
        return { status: res.status, body: (await res.json()) as { code?: string } };
      };
      // Each body leaves less than the file limit (MAX) to drop after its answer, whenever the answer comes: past
      // that, the server closes the connection rather than read on without end, and the test would race it.
      const text = Buffer.alloc(MAX - 50_000, 'a');
      try {
        const before = await stored(t, u);
        const refused = [
          await send(multipart({ projectId: '01a24d3a-62ef-73d4-8c9b-3c3743e8540a' }, 'a.txt', text)),
          await send(multipart({}, 'page.txt', Buffer.concat([Buffer.from('<html>'), text]))),
          await send(multipart({}, 'big.txt', Buffer.alloc(MAX + 200_000, 'a'))),
        ];
        assert.deepEqual(refused.map((r) => `${r.status} ${r.body.code}`), ['404 project_not_found', '415 unsupported_file_type', '413 file_too_large']);
        assert.deepEqual(await stored(t, u), before);
        const next = await send(multipart({}, 'small.txt', Buffer.from('hello')));
        assert.equal(next.status, 201, JSON.stringify(next.body));
        await t.api('DELETE', `/v1/files/${(next.body as { id: string }).id}`, { token: u.accessToken });
      } finally {
        await agent.destroy();
      }
    });

    test('a file belongs to a project or conversation of the uploader only', async () => {
      const project = await t.api('POST', '/v1/projects', { token: u.accessToken, body: { name: 'p' } });
      const ok = await postFile(t, u, 'p.txt', Buffer.from('for the project'), { projectId: project.body.id });
      assert.equal(ok.status, 201, ok.text);
      assert.equal(ok.body.projectId, project.body.id);
      const listed = await t.api('GET', `/v1/files?projectId=${project.body.id}`, { token: u.accessToken });
      assert.deepEqual(listed.body.data.map((f: { id: string }) => f.id), [ok.body.id]);
      const theirs = await postFile(t, stranger, 'x.txt', Buffer.from('x'), { projectId: project.body.id });
      assert.equal(theirs.status, 404, theirs.text);
      const before = await stored(t, u);
      for (const field of ['projectId', 'conversationId']) {
        const notAnId = await postFile(t, u, 'x.txt', Buffer.from('x'), { [field]: 'nope' });
        assert.equal(notAnId.status, 400, notAnId.text);
        assert.equal(notAnId.body.code, 'validation_failed');
        assert.deepEqual(notAnId.body.errors.map((e: { path: string }) => e.path), [`/${field}`]);
      }
      assert.deepEqual(await stored(t, u), before);
    });

    test('another user gets 404 on every endpoint, and nothing changes', async () => {
      const mine = await postFile(t, u, 'private.txt', Buffer.from('secret'));
      const id = mine.body.id;
      assert.equal((await t.api('GET', `/v1/files/${id}`, { token: stranger.accessToken })).status, 404);
      assert.equal((await get(t, stranger, `/v1/files/${id}/content`)).status, 404);
      assert.equal((await t.api('PATCH', `/v1/files/${id}`, { token: stranger.accessToken, body: { name: 'x' } })).status, 404);
      assert.equal((await t.api('DELETE', `/v1/files/${id}`, { token: stranger.accessToken })).status, 404);
      assert.equal((await t.api('GET', '/v1/files', { token: stranger.accessToken })).body.data.some((f: { id: string }) => f.id === id), false);
      assert.equal(await (await get(t, u, `/v1/files/${id}/content`)).text(), 'secret');
    });

    test('a signed link reads the file without credentials until it expires; a forged, moved or expired one is 403', async () => {
      const up = await postFile(t, u, 'pic.png', PNG);
      // No body at all: the default, a 15-minute link to the original.
      const plain = await fetch(`${t.url}/v1/files/${up.body.id}/url`, { method: 'POST', headers: { authorization: `Bearer ${u.accessToken}` } });
      assert.equal(plain.status, 200, await plain.clone().text());
      const plainBody = (await plain.json()) as { expiresAt: string };
      assert.ok(Math.abs(new Date(plainBody.expiresAt).getTime() - Date.now() - 900_000) < 60_000);
      const other = await postFile(t, u, 'other.txt', Buffer.from('other'));
      const made = await t.api('POST', `/v1/files/${up.body.id}/url`, { token: u.accessToken, body: { expiresIn: 60 } });
      assert.equal(made.status, 200, made.text);
      const url = new URL(made.body.url);
      assert.ok(new Date(made.body.expiresAt).getTime() > Date.now());
      const open = await fetch(`${t.url}${url.pathname}${url.search}`);
      assert.equal(open.status, 200);
      assert.deepEqual(Buffer.from(await open.arrayBuffer()), PNG);
      const params = url.searchParams;
      const tampered = `${t.url}${url.pathname}?expires=${Number(params.get('expires')) + 3600}&signature=${encodeURIComponent(params.get('signature')!)}`;
      assert.equal((await fetch(tampered)).status, 403, 'a later expiry breaks the signature');
      const moved = `${t.url}/v1/files/${other.body.id}/content${url.search}`;
      assert.equal((await fetch(moved)).status, 403, 'bound to its file');
      const past = Math.floor(Date.now() / 1000) - 5;
      const expired = await fetch(`${t.url}${url.pathname}?expires=${past}&signature=${encodeURIComponent(t.deps.signer('files.url').sign(`${up.body.id}:${past}`))}`);
      assert.equal(expired.status, 403);
      assert.equal(((await expired.json()) as { code: string }).code, 'url_expired');
      assert.equal((await fetch(`${t.url}${url.pathname}`)).status, 401, 'no link, no credentials: 401');
      assert.equal((await t.api('POST', `/v1/files/${up.body.id}/url`, { token: stranger.accessToken, body: {} })).status, 404);
    });

    test('a signed link without its expiry is not a link this server made: 403 bad_signature, not url_expired', async () => {
      const up = await postFile(t, u, 'sig.png', PNG);
      const url = new URL((await t.api('POST', `/v1/files/${up.body.id}/url`, { token: u.accessToken, body: { expiresIn: 60 } })).body.url);
      const res = await fetch(`${t.url}${url.pathname}?signature=${encodeURIComponent(url.searchParams.get('signature')!)}`);
      assert.equal(res.status, 403);
      assert.match(res.headers.get('content-type')!, /problem\+json/);
      assert.equal(((await res.json()) as { code: string }).code, 'bad_signature');
    });

    test('the owner\'s sockets hear of each file stored and deleted, on `files` and `file:<id>`; nobody else\'s', async () => {
      const socket = await connectAs(t, u.accessToken);
      const other = await connectAs(t, stranger.accessToken);
      try {
        assert.equal((await subscribe(socket, 'files')).type, 'subscribed');
        assert.equal((await subscribe(other, 'files')).type, 'subscribed');
        const up = await postFile(t, u, 'live.txt', Buffer.from('live'));
        const created = await socket.next((f) => f.type === 'event' && f.event?.type === 'file.created' && f.event.payload.fileId === up.body.id);
        assert.deepEqual(created.event.payload, { userId: u.id, fileId: up.body.id, name: 'live.txt', mimeType: 'text/plain', size: 4 });
        assert.equal((await subscribe(socket, `file:${up.body.id}`)).type, 'subscribed');
        const refused = await subscribe(other, `file:${up.body.id}`);
        assert.equal(refused.type, 'error');
        assert.equal(refused.code, 'not_found');
        await t.api('DELETE', `/v1/files/${up.body.id}`, { token: u.accessToken });
        const deleted = await socket.next((f) => f.type === 'event' && f.event?.type === 'file.deleted');
        assert.equal(deleted.topic, `file:${up.body.id}`, 'the most specific topic subscribed to');
        await assert.rejects(other.next((f) => f.type === 'event', 300), 'the other user hears nothing');
      } finally {
        await socket.close();
        await other.close();
      }
    });

    test('delete removes the row at once and the bytes soon after (a queued job)', async () => {
      const up = await postFile(t, u, 'gone.txt', Buffer.from('bye'));
      assert.equal((await t.deps.storage.keys(`files/${u.id}/${up.body.id}/`)).length, 1);
      assert.equal((await t.api('DELETE', `/v1/files/${up.body.id}`, { token: u.accessToken })).status, 204);
      assert.equal((await t.api('GET', `/v1/files/${up.body.id}`, { token: u.accessToken })).status, 404);
      await eventually(async () => assert.deepEqual(await t.deps.storage.keys(`files/${u.id}/${up.body.id}/`), []));
    });

    test('the quota: a declared length over it is refused before a byte is stored, a stream crossing it is cut; 413 with used and limit', async () => {
      const owner = await createUser(t);
      const first = await postFile(t, owner, 'a.txt', Buffer.alloc(MAX - 1000, 'a'));
      assert.equal(first.status, 201, first.text);
      const second = await postFile(t, owner, 'b.txt', Buffer.alloc(MAX - 1000, 'b'));
      assert.equal(second.status, 201, second.text);
      const quota = await t.api('GET', '/v1/files/quota', { token: owner.accessToken });
      assert.deepEqual(quota.body, { used: 2 * (MAX - 1000), limit: QUOTA, remaining: QUOTA - 2 * (MAX - 1000), custom: false });
      const before = await stored(t, owner);
      // Declared: the body is larger than the room left.
      const declared = await postFile(t, owner, 'c.txt', Buffer.alloc(MAX - 1000, 'c'));
      assert.equal(declared.status, 413, declared.text);
      assert.equal(declared.body.code, 'quota_exceeded');
      assert.equal(declared.body.used, 2 * (MAX - 1000));
      assert.equal(declared.body.limit, QUOTA);
      // Streamed without a length: cut once it crosses the room left.
      const form = new FormData();
      form.append('file', new Blob([Buffer.alloc(QUOTA - 2 * (MAX - 1000) + 5000, 'd')]), 'd.txt');
      const req = new Request(`${t.url}/v1/files`, { method: 'POST', body: form });
      const streamed = await fetch(`${t.url}/v1/files`, {
        method: 'POST',
        headers: { authorization: `Bearer ${owner.accessToken}`, 'content-type': req.headers.get('content-type')! },
        body: req.body,
        duplex: 'half',
      } as RequestInit);
      assert.equal(streamed.status, 413);
      assert.equal(((await streamed.json()) as { code: string }).code, 'quota_exceeded');
      assert.deepEqual(await stored(t, owner), before);
    });

    test('uploads side by side that each fit the quota but not together: only as many as fit are kept, the rest 413 with nothing left', async () => {
      const owner = await createUser(t);
      const size = MAX - 1000; // three of these pass QUOTA, two do not
      const results = await Promise.all(['x', 'y', 'z'].map((c) => postFile(t, owner, `${c}.txt`, Buffer.alloc(size, c))));
      const statuses = results.map((r) => r.status).sort();
      assert.deepEqual(statuses, [201, 201, 413], results.map((r) => r.text).join('\n'));
      assert.equal(results.find((r) => r.status === 413)!.body.code, 'quota_exceeded');
      const quota = await t.api('GET', '/v1/files/quota', { token: owner.accessToken });
      assert.equal(quota.body.used, 2 * size);
      assert.deepEqual(await stored(t, owner), { rows: 2, blobs: 2 });
    });

    test('uploads and deletes side by side: the usage the quota reads is what the files add up to; a delete frees its room', async () => {
      const owner = await createUser(t);
      const kept = await Promise.all([1, 2, 3, 4].map((n) => postFile(t, owner, `${n}.txt`, Buffer.alloc(n * 100, 'k'))));
      // Four more uploads while two of the first go.
      const results = await Promise.all([
        ...[5, 6, 7, 8].map((n) => postFile(t, owner, `${n}.txt`, Buffer.alloc(n * 100, 'k'))),
        ...kept.slice(0, 2).map((f) => t.api('DELETE', `/v1/files/${f.body.id}`, { token: owner.accessToken })),
      ]);
      assert.deepEqual(results.map((r) => r.status), [201, 201, 201, 201, 204, 204]);
      const listed = (await t.api('GET', '/v1/files?limit=100', { token: owner.accessToken })).body.data as { size: number }[];
      const used = (await t.api('GET', '/v1/files/quota', { token: owner.accessToken })).body.used;
      assert.equal(used, listed.reduce((sum, f) => sum + f.size, 0));
      assert.equal(used, (3 + 4 + 5 + 6 + 7 + 8) * 100);

      // Full, then a delete makes room for the same upload.
      const big = await postFile(t, owner, 'big.txt', Buffer.alloc(MAX - 1000, 'b'));
      assert.equal(big.status, 201, big.text);
      const again = () => postFile(t, owner, 'again.txt', Buffer.alloc(MAX - 1000, 'a'));
      assert.equal((await again()).status, 201);
      assert.equal((await again()).status, 413);
      assert.equal((await t.api('DELETE', `/v1/files/${big.body.id}`, { token: owner.accessToken })).status, 204);
      assert.equal((await again()).status, 201);
    });

    test('deleting the account removes its files: the rows at once, the bytes soon after', async () => {
      const leaving = await createUser(t);
      await postFile(t, leaving, 'a.txt', Buffer.from('a'));
      await postFile(t, leaving, 'b.png', PNG);
      assert.equal((await t.deps.storage.keys(`files/${leaving.id}/`)).length, 2);
      const res = await t.api('DELETE', '/v1/users/me', { token: leaving.accessToken, body: { password: leaving.password } });
      assert.equal(res.status, 204, res.text);
      await eventually(async () => assert.deepEqual(await t.deps.storage.keys(`files/${leaving.id}/`), []), 10_000);
      assert.ok((await t.deps.storage.keys(`files/${u.id}/`)).length > 0, "other users' files stay");
    });

    test("an admin sets a user's own quota, and takes it back to the default; only admins, only existing users", async () => {
      const admin = await createUser(t, { admin: true });
      const someone = await createUser(t);
      const put = (userId: string, bytes: number | null, token = admin.accessToken) => t.api('PUT', `/v1/admin/files/quota/${userId}`, { token, body: { bytes } });
      assert.deepEqual((await put(someone.id, 10)).body, { used: 0, limit: 10, remaining: 10, custom: true });
      const refused = await postFile(t, someone, 'x.txt', Buffer.from('more than ten bytes'));
      assert.equal(refused.status, 413, refused.text);
      assert.equal(refused.body.code, 'quota_exceeded');
      assert.equal(refused.body.limit, 10);
      assert.equal((await put(someone.id, QUOTA * 2)).body.limit, QUOTA * 2);
      assert.equal((await postFile(t, someone, 'x.txt', Buffer.from('more than ten bytes'))).status, 201);
      assert.deepEqual((await put(someone.id, null)).body, { used: 19, limit: QUOTA, remaining: QUOTA - 19, custom: false });
      assert.equal((await t.api('GET', `/v1/admin/files/quota/${someone.id}`, { token: admin.accessToken })).body.used, 19);
      assert.equal((await put(someone.id, 5, someone.accessToken)).status, 403);
      assert.equal((await put('01900000-0000-7000-8000-000000000000', 5)).status, 404);
      assert.equal((await t.api('GET', '/v1/admin/files/quota/01900000-0000-7000-8000-000000000000', { token: admin.accessToken })).status, 404);
      assert.equal((await put(someone.id, -1)).status, 400);
    });

    test('files count in the footprint report, and an API key needs the files scope', async () => {
      const owner = await createUser(t);
      await postFile(t, owner, 'n.txt', Buffer.from('12345'));
      const footprint = await t.api('GET', '/v1/usage/storage', { token: owner.accessToken });
      const files = footprint.body.sources.find((s: { source: string }) => s.source === 'files');
      assert.deepEqual(files, { source: 'files', items: 1, bytes: 5 });
      const key = await t.api('POST', '/v1/api-keys', { token: owner.accessToken, body: { name: 'k', scopes: ['chat'] } });
      assert.equal((await t.api('GET', '/v1/files', { token: key.body.key })).status, 403);
      const filesKey = await t.api('POST', '/v1/api-keys', { token: owner.accessToken, body: { name: 'k2', scopes: ['files'] } });
      assert.equal((await t.api('GET', '/v1/files', { token: filesKey.body.key })).status, 200);
    });
  });
}
