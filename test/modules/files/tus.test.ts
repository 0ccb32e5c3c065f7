import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { MemoryLocker } from '@tus/server';
import * as tus from 'tus-js-client';
import { backends, startApp, type Backend, type TestApp } from '../../support/app.ts';
import { eventually } from '../../support/eventually.ts';
import { createUser, type TestUser } from '../../support/factories.ts';
import { freePort } from '../../support/process.ts';
import { REDIS_SERVER, startRedisServer, type RedisServer } from '../../support/redis.ts';
import { startS3, type LocalS3 } from '../../support/s3.ts';

const MAX = 3 * 1024 * 1024;
const CHUNK = 256 * 1024;
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
/** A real 1×1 PNG. */
const PNG = Buffer.from('iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==', 'base64');
/** A PNG with random bytes after its end: typed as an image, and unlike any other file. */
const png = (size: number) => Buffer.concat([PNG, randomBytes(size - PNG.length)]);
const idOfUrl = (url: string) => url.split('/').at(-1)!;

interface Sent {
  /** The upload's URL (resume or delete with it). */
  url: string;
  /** Bytes the client sent and the server took, chunk by chunk. */
  accepted: number[];
  /** The last response: the file (JSON) and its Parley-File-Id, when it finished. */
  status?: number;
  body?: any;
  fileId?: string;
  error?: tus.DetailedError;
}

/**
 * One tus upload through tus-js-client, the protocol's reference client:
 * resolves when it succeeds, fails, or (with `stopAfter`) has had that many
 * bytes accepted and is aborted. No retries: every failure is seen.
 */
function send(t: TestApp, token: string, data: Buffer, opts: { uploadUrl?: string; metadata?: Record<string, string>; stopAfter?: number; chunkSize?: number } = {}): Promise<Sent> {
  return new Promise((resolve) => {
    const sent: Sent = { url: opts.uploadUrl ?? '', accepted: [] };
    const upload = new tus.Upload(data, {
      endpoint: `${t.url}/v1/files/uploads`,
      uploadUrl: opts.uploadUrl,
      headers: { authorization: `Bearer ${token}` },
      metadata: opts.metadata ?? { filename: 'picture.png' },
      chunkSize: opts.chunkSize ?? CHUNK,
      retryDelays: null,
      // Node has no localStorage: nothing remembered between uploads; resuming is by URL.
      storeFingerprintForResuming: false,
      onUploadUrlAvailable() {
        sent.url = upload.url!;
      },
      onChunkComplete(chunkSize, bytesAccepted) {
        sent.accepted.push(chunkSize);
        if (opts.stopAfter !== undefined && bytesAccepted >= opts.stopAfter) void upload.abort().then(() => resolve(sent));
      },
      onSuccess({ lastResponse }) {
        sent.status = lastResponse.getStatus();
        sent.fileId = lastResponse.getHeader('parley-file-id');
        sent.body = JSON.parse(lastResponse.getBody());
        resolve(sent);
      },
      onError(err) {
        sent.error = err as tus.DetailedError;
        sent.status = (err as tus.DetailedError).originalResponse?.getStatus();
        const body = (err as tus.DetailedError).originalResponse?.getBody();
        sent.body = body ? JSON.parse(body) : undefined;
        resolve(sent);
      },
    });
    upload.start();
  });
}

/** The server's offset of an upload (tus HEAD). */
async function offsetOf(t: TestApp, token: string, url: string): Promise<number> {
  const res = await fetch(new URL(url, t.url), { method: 'HEAD', headers: { authorization: `Bearer ${token}`, 'tus-resumable': '1.0.0' } });
  assert.equal(res.status, 200);
  return Number(res.headers.get('upload-offset'));
}

const create = (t: TestApp, token: string | undefined, length: number, metadata: Record<string, string> = { filename: 'a.png' }) =>
  fetch(`${t.url}/v1/files/uploads`, {
    method: 'POST',
    headers: {
      ...(token ? { authorization: `Bearer ${token}` } : {}),
      'tus-resumable': '1.0.0',
      'upload-length': String(length),
      'upload-metadata': Object.entries(metadata)
        .map(([k, v]) => `${k} ${Buffer.from(v).toString('base64')}`)
        .join(','),
    },
  });

/** What a user has: file rows, final blobs, and unfinished uploads (all of them: the test's users upload one at a time). */
async function stored(t: TestApp, u: TestUser) {
  const list = await t.api('GET', '/v1/files?limit=100', { token: u.accessToken });
  return { rows: list.body.data.length, blobs: (await t.deps.storage.keys(`files/${u.id}/`)).length };
}
const leftovers = async (t: TestApp, uploadUrl: string) => (await t.deps.storage.keys('uploads/')).filter((k) => k.startsWith(`uploads/${idOfUrl(uploadUrl)}/`));

const setups: Array<{ name: string; backend: Backend; s3?: boolean }> = [
  ...backends().map((backend) => ({ name: backend, backend })),
  { name: 'embedded, S3 storage', backend: 'embedded', s3: true },
  ...(backends().includes('postgres') ? [{ name: 'postgres, S3 storage', backend: 'postgres' as const, s3: true }] : []),
];

for (const setup of setups) {
  describe(`resumable uploads (tus) [${setup.name}]`, () => {
    let t: TestApp;
    let s3: LocalS3 | undefined;
    let u: TestUser;
    let stranger: TestUser;
    before(async () => {
      s3 = setup.s3 ? await startS3() : undefined;
      t = await startApp({ backend: setup.backend, env: { FILES_MAX_BYTES: String(MAX), ...s3?.env } });
      u = await createUser(t);
      stranger = await createUser(t);
    });
    after(async () => {
      await t.close();
      await s3?.close();
    });

    test('a file sent in several chunks arrives whole: its row, its hash, its bytes; nothing of the upload is left', async () => {
      const data = png(1024 * 1024 + 123);
      const sent = await send(t, u.accessToken, data, { metadata: { filename: 'photo.png' } });
      assert.equal(sent.error, undefined, sent.error?.message);
      assert.ok(sent.accepted.length >= 4, 'several PATCHes');
      assert.equal(sent.status, 200);
      assert.equal(sent.fileId, sent.body.id, 'the last response names the file');
      assert.equal(sent.body.sha256, sha(data));
      assert.equal(sent.body.size, data.length);
      assert.equal(sent.body.mimeType, 'image/png');
      assert.equal(sent.body.name, 'photo.png');
      assert.equal(sent.body.id, idOfUrl(sent.url), 'the file keeps the upload\'s id');
      const content = await fetch(`${t.url}/v1/files/${sent.fileId}/content`, { headers: { authorization: `Bearer ${u.accessToken}` } });
      assert.deepEqual(Buffer.from(await content.arrayBuffer()), data);
      assert.deepEqual(await leftovers(t, sent.url), []);
      const gone = await fetch(new URL(sent.url, t.url), { method: 'HEAD', headers: { authorization: `Bearer ${u.accessToken}`, 'tus-resumable': '1.0.0' } });
      assert.equal(gone.status, 404);
    });

    test('an interrupted upload resumes from the server\'s offset and sends only what is missing', async () => {
      const data = png(1024 * 1024);
      const first = await send(t, u.accessToken, data, { stopAfter: 2 * CHUNK });
      assert.equal(first.status, undefined, 'aborted, not finished');
      const offset = await offsetOf(t, u.accessToken, first.url);
      assert.equal(offset, first.accepted.reduce((a, b) => a + b, 0));
      assert.ok(offset > 0 && offset < data.length);

      // A second instance sharing the database, the bucket (and Redis) takes over, where there is one to share.
      const other = setup.backend === 'postgres' && setup.s3 ? await startApp({ sharedWith: t, env: { FILES_MAX_BYTES: String(MAX), ...s3?.env } }) : undefined;
      try {
        const target = other ?? t;
        const second = await send(target, u.accessToken, data, { uploadUrl: first.url.replace(t.url, target.url) });
        assert.equal(second.error, undefined, second.error?.message);
        assert.equal(second.accepted.reduce((a, b) => a + b, 0), data.length - offset, 'only the missing bytes');
        assert.equal(second.body.sha256, sha(data));
        assert.equal(second.body.size, data.length);
      } finally {
        await other?.close();
      }
    });

    test('a PATCH whose connection hangs half-way: a HEAD (the client back) makes it keep what arrived, and the upload resumes there', async () => {
      const data = png(600 * 1024);
      const created = await create(t, u.accessToken, data.length);
      assert.equal(created.status, 201);
      const url = new URL(created.headers.get('location')!, t.url).toString();
      const half = 300 * 1024;
      const hang = new AbortController();
      // Half the bytes, then nothing: the request stays open, as a connection that died without a FIN.
      const body = new ReadableStream({
        start(controller) {
          controller.enqueue(data.subarray(0, half));
        },
      });
      const stalled = fetch(url, {
        method: 'PATCH',
        headers: { authorization: `Bearer ${u.accessToken}`, 'tus-resumable': '1.0.0', 'upload-offset': '0', 'content-type': 'application/offset+octet-stream' },
        body,
        duplex: 'half',
        signal: hang.signal,
      } as RequestInit).catch(() => undefined);
      // The client comes back through another instance where there is one to share (the lock and its release then go through Redis).
      const other = setup.backend === 'postgres' && setup.s3 ? await startApp({ sharedWith: t, env: { FILES_MAX_BYTES: String(MAX), ...s3?.env } }) : undefined;
      try {
        const target = other ?? t;
        const there = url.replace(t.url, target.url);
        // The server holds the upload's lock for that PATCH; the HEAD asks it to let go, and it commits what it got.
        const offset = await eventually(async () => {
          const o = await offsetOf(target, u.accessToken, there);
          assert.equal(o, half);
          return o;
        }, 15_000);
        hang.abort();
        await stalled;
        const rest = await send(target, u.accessToken, data, { uploadUrl: there });
        assert.equal(rest.error, undefined, rest.error?.message);
        assert.equal(rest.accepted.reduce((a, b) => a + b, 0), data.length - offset, 'only the missing bytes');
        assert.equal(rest.body.sha256, sha(data));
      } finally {
        hang.abort();
        await other?.close();
      }
    });

    test('a creation that carries all the bytes (creation-with-upload) answers 201 with the file', async () => {
      const data = png(50_000);
      const res = await fetch(`${t.url}/v1/files/uploads`, {
        method: 'POST',
        headers: {
          authorization: `Bearer ${u.accessToken}`,
          'tus-resumable': '1.0.0',
          'upload-length': String(data.length),
          'upload-metadata': `filename ${Buffer.from('one-go.png').toString('base64')}`,
          'content-type': 'application/offset+octet-stream',
        },
        body: data,
      });
      assert.equal(res.status, 201);
      const file = (await res.json()) as any;
      assert.equal(res.headers.get('parley-file-id'), file.id);
      assert.equal(file.sha256, sha(data));
      assert.equal(file.name, 'one-go.png');
      assert.ok(res.headers.get('location')!.endsWith(file.id));
      await eventually(async () => assert.deepEqual(await leftovers(t, file.id), []));
    });

    test('someone else\'s upload is not found: HEAD, PATCH, DELETE are 404, and it is untouched', async () => {
      const created = await create(t, u.accessToken, 1000);
      assert.equal(created.status, 201);
      const url = new URL(created.headers.get('location')!, t.url).toString();
      const as = (token: string, method: string, extra: Record<string, string> = {}, body?: Buffer) =>
        fetch(url, { method, headers: { authorization: `Bearer ${token}`, 'tus-resumable': '1.0.0', ...extra }, body });
      assert.match(created.headers.get('x-request-id') ?? '', /^[0-9a-f-]{36}$/, 'the request id, as on every response');
      assert.equal((await as(stranger.accessToken, 'HEAD')).status, 404);
      const patch = await as(stranger.accessToken, 'PATCH', { 'upload-offset': '0', 'content-type': 'application/offset+octet-stream' }, png(1000));
      assert.equal(patch.status, 404);
      assert.equal(patch.headers.get('content-type'), 'application/problem+json; charset=utf-8');
      assert.equal(((await patch.json()) as any).code, 'upload_not_found');
      assert.equal((await as(stranger.accessToken, 'DELETE')).status, 404);
      assert.equal(await offsetOf(t, u.accessToken, url), 0);
      const wrongOffset = await as(u.accessToken, 'PATCH', { 'upload-offset': '10', 'content-type': 'application/offset+octet-stream' }, png(100));
      assert.equal(wrongOffset.status, 409);
      assert.equal(((await wrongOffset.json()) as any).code, 'upload_offset_mismatch');
      const noVersion = await fetch(url, { method: 'HEAD', headers: { authorization: `Bearer ${u.accessToken}` } });
      assert.equal(noVersion.status, 412);
      // Refused by tus itself, before any of Parley's hooks: a problem all the same, naming the request, with a reason phrase.
      const unversioned = await fetch(url, { method: 'PATCH', headers: { authorization: `Bearer ${u.accessToken}`, 'upload-offset': '0', 'content-type': 'application/offset+octet-stream' }, body: png(100) });
      assert.deepEqual([unversioned.status, unversioned.statusText], [412, 'Precondition Failed']);
      const problem = (await unversioned.json()) as any;
      assert.deepEqual([problem.code, problem.instance, problem.requestId], ['tus_version_required', new URL(url).pathname, unversioned.headers.get('x-request-id')]);
      assert.equal(patch.statusText, 'Not Found', "a hook's problem gets its reason phrase too");
      // A version it does not speak: 412 with the one it does (tus: "MUST respond with 412 … and MUST include the Tus-Version header").
      const otherVersion = await as(u.accessToken, 'PATCH', { 'tus-resumable': '0.2.2', 'upload-offset': '0', 'content-type': 'application/offset+octet-stream' }, png(100));
      assert.deepEqual([otherVersion.status, otherVersion.headers.get('tus-version')], [412, '1.0.0']);
      assert.equal(((await otherVersion.json()) as any).code, 'tus_version_unsupported');
      assert.equal(await offsetOf(t, u.accessToken, url), 0, 'nothing written');
      assert.equal((await as(u.accessToken, 'DELETE')).status, 204);
      assert.deepEqual(await leftovers(t, url), []);
    });

    test('a length over the size limit or the quota is refused (413) before anything is stored', async () => {
      const before = (await t.deps.storage.keys('uploads/')).length;
      const big = await create(t, u.accessToken, MAX + 1);
      assert.equal(big.status, 413);
      assert.equal(big.headers.get('content-type'), 'application/problem+json; charset=utf-8');
      assert.equal(((await big.json()) as any).code, 'file_too_large');

      const small = await createUser(t);
      await t.services.files.setQuota(small.id, 100_000);
      const over = await create(t, small.accessToken, 200_000);
      assert.equal(over.status, 413);
      const problem = (await over.json()) as any;
      assert.equal(problem.code, 'quota_exceeded');
      assert.equal(problem.used, 0);
      assert.equal(problem.limit, 100_000);
      assert.equal((await t.deps.storage.keys('uploads/')).length, before);

      const badProject = await create(t, u.accessToken, 1000, { filename: 'a.png', projectId: '01900000-0000-7000-8000-000000000000' });
      assert.equal(badProject.status, 404);
      assert.equal(((await badProject.json()) as any).code, 'project_not_found');
      const badConversation = await create(t, u.accessToken, 1000, { filename: 'a.png', conversationId: '01900000-0000-7000-8000-000000000000' });
      assert.equal(badConversation.status, 404);
      assert.equal((await t.deps.storage.keys('uploads/')).length, before);
    });

    test('bytes of a refused type are refused when they are all in (415), and nothing is left', async () => {
      const owner = await createUser(t);
      const html = Buffer.from(`<!doctype html><html><body>${'<p>hello</p>'.repeat(40_000)}</body></html>`);
      const sent = await send(t, owner.accessToken, html, { metadata: { filename: 'page.txt' } });
      assert.equal(sent.status, 415, sent.error?.message);
      assert.equal(sent.body.code, 'unsupported_file_type');
      assert.equal(sent.body.detectedType, 'text/html');
      assert.deepEqual(await stored(t, owner), { rows: 0, blobs: 0 });
      assert.deepEqual(await leftovers(t, sent.url), []);
    });

    test('what this server does not take is a 400 problem, not a 500: a deferred length, Upload-Length on a PATCH; an overlong creation body leaves nothing', async () => {
      const tusHeaders = { authorization: `Bearer ${u.accessToken}`, 'tus-resumable': '1.0.0' };
      const before = (await t.deps.storage.keys('uploads/')).length;
      const deferred = await fetch(`${t.url}/v1/files/uploads`, { method: 'POST', headers: { ...tusHeaders, 'upload-defer-length': '1', 'upload-metadata': `filename ${Buffer.from('a.txt').toString('base64')}` } });
      assert.equal(deferred.status, 400);
      assert.equal(deferred.headers.get('content-type'), 'application/problem+json; charset=utf-8');
      assert.equal(((await deferred.json()) as any).code, 'upload_length_required');

      const made = await create(t, u.accessToken, 10, { filename: 'a.txt' });
      assert.equal(made.status, 201);
      const url = new URL(made.headers.get('location')!, t.url);
      const patch = await fetch(url, { method: 'PATCH', headers: { ...tusHeaders, 'upload-offset': '0', 'upload-length': '10', 'content-type': 'application/offset+octet-stream' }, body: 'hello' });
      assert.equal(patch.status, 400);
      assert.equal(((await patch.json()) as any).code, 'invalid_upload_length');
      assert.equal(await offsetOf(t, u.accessToken, url.pathname), 0, 'nothing of that PATCH was taken');
      // Bytes past the length with no Content-Length to tell beforehand: cut as they stream, the documented 413 all the same.
      const chunked = new ReadableStream({
        start(controller) {
          controller.enqueue(Buffer.from('hello world, and more'));
          controller.close();
        },
      });
      const overrun = await fetch(url, { method: 'PATCH', headers: { ...tusHeaders, 'upload-offset': '0', 'content-type': 'application/offset+octet-stream' }, body: chunked, duplex: 'half' } as RequestInit);
      assert.equal(overrun.status, 413);
      assert.equal(((await overrun.json()) as any).code, 'file_too_large');
      assert.equal(await offsetOf(t, u.accessToken, url.pathname), 0, 'nothing of that PATCH was taken either');
      await fetch(url, { method: 'DELETE', headers: tusHeaders });

      // Creation-with-upload whose bytes run past its length: refused, and the upload it began is gone (its client has no Location).
      const overlong = await fetch(`${t.url}/v1/files/uploads`, {
        method: 'POST',
        headers: { ...tusHeaders, 'upload-length': '3', 'content-type': 'application/offset+octet-stream', 'upload-metadata': `filename ${Buffer.from('a.txt').toString('base64')}` },
        body: 'hello world',
      });
      assert.equal(overlong.status, 413);
      assert.equal(overlong.headers.get('location'), null);
      assert.equal(((await overlong.json()) as any).code, 'file_too_large');
      assert.equal((await t.deps.storage.keys('uploads/')).length, before);
    });

    test('a PATCH without Upload-Offset, or with one that is not a number, is 400 invalid_upload_offset (as tusd answers); one of another type is 415; each takes nothing', async () => {
      const tusHeaders = { authorization: `Bearer ${u.accessToken}`, 'tus-resumable': '1.0.0', 'content-type': 'application/offset+octet-stream' };
      const made = await create(t, u.accessToken, 10, { filename: 'a.txt' });
      assert.equal(made.status, 201);
      const url = new URL(made.headers.get('location')!, t.url);
      for (const offset of [undefined, 'zero', '-1', '']) {
        const patch = await fetch(url, { method: 'PATCH', headers: { ...tusHeaders, ...(offset !== undefined && { 'upload-offset': offset }) }, body: 'hello' });
        assert.equal(patch.status, 400, `Upload-Offset ${offset}`);
        assert.match(patch.headers.get('content-type')!, /problem\+json/);
        const problem = (await patch.json()) as { code: string; detail: string };
        assert.equal(problem.code, 'invalid_upload_offset');
        assert.match(problem.detail, /Upload-Offset/);
      }
      for (const type of [undefined, 'application/octet-stream', 'text/plain']) {
        const headers: Record<string, string> = { ...tusHeaders, 'upload-offset': '0' };
        if (type) headers['content-type'] = type;
        else delete headers['content-type'];
        for (const body of [new TextEncoder().encode('hello'), undefined]) {
          const patch = await fetch(url, { method: 'PATCH', headers, body });
          assert.equal(patch.status, 415, `Content-Type ${type}, ${body ? 'bytes' : 'no body'}`);
          assert.equal(((await patch.json()) as { code: string }).code, 'unsupported_media_type');
        }
      }
      assert.equal(await offsetOf(t, u.accessToken, url.pathname), 0, 'nothing of those PATCHes was taken');
      const right = await fetch(url, { method: 'PATCH', headers: { ...tusHeaders, 'upload-offset': '0' }, body: 'hello' });
      assert.equal(right.status, 204);
      await fetch(url, { method: 'DELETE', headers: tusHeaders });
    });

    test('credentials: none is 401; an API key needs the files scope', async () => {
      const anonymous = await create(t, undefined, 1000);
      assert.equal(anonymous.status, 401);
      assert.equal(((await anonymous.json()) as any).code, 'unauthorized');
      const chatKey = await t.api('POST', '/v1/api-keys', { token: u.accessToken, body: { name: 'k', scopes: ['chat'] } });
      assert.equal((await create(t, chatKey.body.key, 1000)).status, 403);
      const filesKey = await t.api('POST', '/v1/api-keys', { token: u.accessToken, body: { name: 'k2', scopes: ['files'] } });
      const sent = await send(t, filesKey.body.key, png(10_000));
      assert.equal(sent.status, 200, sent.error?.message);
      // Discovery needs no credentials.
      const options = await fetch(`${t.url}/v1/files/uploads`, { method: 'OPTIONS' });
      assert.equal(options.status, 204);
      assert.match(options.headers.get('tus-extension') ?? '', /creation/);
    });

    test('final PATCHes of one upload side by side: one makes the file, the others get a 4xx (never a 500, nor a file made of other bytes)', async () => {
      const length = 300_000;
      const created = await create(t, u.accessToken, length);
      assert.equal(created.status, 201);
      const url = new URL(created.headers.get('location')!, t.url);
      const bodies = Array.from({ length: 10 }, () => png(length));
      const results = await Promise.all(
        bodies.map(async (body) => {
          const res = await fetch(url, {
            method: 'PATCH',
            headers: { authorization: `Bearer ${u.accessToken}`, 'tus-resumable': '1.0.0', 'upload-offset': '0', 'content-type': 'application/offset+octet-stream' },
            body,
          });
          const text = await res.text();
          return { status: res.status, body: text ? JSON.parse(text) : undefined, sent: body };
        }),
      );
      const statuses = results.map((r) => `${r.status} ${r.body?.code ?? ''}`).join(', ');
      const made = results.filter((r) => r.status === 200);
      assert.equal(made.length, 1, statuses);
      assert.equal(made[0]!.body.sha256, sha(made[0]!.sent), 'the file is the bytes of the PATCH that made it');
      for (const r of results.filter((r) => r.status !== 200)) {
        assert.ok([404, 409].includes(r.status), statuses);
        assert.ok(['upload_not_found', 'upload_offset_mismatch'].includes(r.body.code), statuses);
      }
      assert.deepEqual(await leftovers(t, url.toString()), []);
    });
  });
}

describe('resumable uploads (tus): expiry', () => {
  let t: TestApp;
  before(async () => {
    t = await startApp({ env: { FILES_UPLOAD_EXPIRY_SECONDS: '1' } });
  });
  after(() => t.close());

  test('an upload left unfinished past its expiry is gone (410), and the schedule removes its bytes', async () => {
    const u = await createUser(t);
    const created = await create(t, u.accessToken, 100_000);
    const url = new URL(created.headers.get('location')!, t.url).toString();
    assert.ok(created.headers.get('upload-expires'));
    const patch = await fetch(url, { method: 'PATCH', headers: { authorization: `Bearer ${u.accessToken}`, 'tus-resumable': '1.0.0', 'upload-offset': '0', 'content-type': 'application/offset+octet-stream' }, body: png(1000) });
    assert.equal(patch.status, 204);
    assert.equal((await leftovers(t, url)).length, 2, 'its info and one chunk');
    await eventually(async () => {
      const head = await fetch(url, { method: 'HEAD', headers: { authorization: `Bearer ${u.accessToken}`, 'tus-resumable': '1.0.0' } });
      assert.equal(head.status, 410);
    });
    assert.ok((await t.services.resumableUploads.expire()) >= 1);
    assert.deepEqual(await leftovers(t, url), []);
  });
});

describe('resumable uploads (tus): an upload held by another request', () => {
  let t: TestApp;
  before(async () => {
    t = await startApp();
  });
  after(async () => t.close());

  test('a request that waits out the lock (the last PATCH still making the file) is 423 upload_locked with Retry-After, not a 500; the upload is untouched', async () => {
    const u = await createUser(t);
    const created = await create(t, u.accessToken, 1000);
    const url = new URL(created.headers.get('location')!, t.url);
    const id = idOfUrl(url.pathname);
    const headers = { authorization: `Bearer ${u.accessToken}`, 'tus-resumable': '1.0.0' };
    // One process: tus's MemoryLocker, whose wait is cut short here (30 s otherwise).
    const locker = t.services.resumableUploads.locker as MemoryLocker;
    assert.ok(locker instanceof MemoryLocker);
    const wait = locker.timeout;
    locker.timeout = 200;
    // Held as the finishing PATCH holds it: it does not let go when asked.
    const held = locker.newLock(id);
    await held.lock(new AbortController().signal, () => {});
    try {
      const head = await fetch(url, { method: 'HEAD', headers });
      assert.equal(head.status, 423);
      assert.ok(Number(head.headers.get('retry-after')) > 0);
      const patch = await fetch(url, { method: 'PATCH', headers: { ...headers, 'upload-offset': '0', 'content-type': 'application/offset+octet-stream' }, body: png(1000) });
      assert.equal(patch.status, 423);
      assert.equal(((await patch.json()) as any).code, 'upload_locked');
    } finally {
      await held.unlock();
      locker.timeout = wait;
    }
    assert.equal(await offsetOf(t, u.accessToken, url.pathname), 0);
    const rest = await send(t, u.accessToken, png(1000), { uploadUrl: url.toString() });
    assert.equal(rest.status, 200, rest.error?.message);
  });
});

describe('resumable uploads (tus): Redis outage [postgres]', { skip: !process.env.DATABASE_URL ? 'needs PostgreSQL (DATABASE_URL)' : !existsSync(REDIS_SERVER) ? `needs ${REDIS_SERVER}` : false }, () => {
  let redis: RedisServer | undefined;
  let t: TestApp | undefined;
  after(async () => {
    await t?.close();
    await redis?.stop();
  });

  test('without Redis an upload is a quick 503 with Retry-After, keeping its bytes; it resumes once Redis is back', async () => {
    const port = await freePort();
    redis = await startRedisServer(port);
    // The HTTP path alone (no worker role): what is tested is the tus requests' answer to the outage.
    t = await startApp({ backend: 'postgres', worker: false, env: { REDIS_URL: redis.url } });
    const app = t;
    const u = await createUser(app);
    const data = png(200_000);
    const first = await send(app, u.accessToken, data, { stopAfter: CHUNK / 2, chunkSize: CHUNK / 2 });
    const offset = await offsetOf(app, u.accessToken, first.url);
    assert.equal(offset, CHUNK / 2);

    await redis.stop();
    await eventually(() => assert.notEqual(app.deps.redis!.status, 'ready'));
    const head = await fetch(first.url, { method: 'HEAD', headers: { authorization: `Bearer ${u.accessToken}`, 'tus-resumable': '1.0.0' } });
    assert.equal(head.status, 503);
    assert.ok(Number(head.headers.get('retry-after')) > 0);
    const patch = await fetch(first.url, {
      method: 'PATCH',
      headers: { authorization: `Bearer ${u.accessToken}`, 'tus-resumable': '1.0.0', 'upload-offset': String(offset), 'content-type': 'application/offset+octet-stream' },
      body: data.subarray(offset),
    });
    assert.equal(patch.status, 503);
    assert.equal(((await patch.json()) as any).code, 'dependency_unavailable');

    redis = await startRedisServer(port);
    await eventually(() => assert.equal(app.deps.redis!.status, 'ready'), 15_000);
    assert.equal(await offsetOf(app, u.accessToken, first.url), offset, 'nothing lost, nothing added');
    const rest = await send(app, u.accessToken, data, { uploadUrl: first.url });
    assert.equal(rest.error, undefined, rest.error?.message);
    assert.equal(rest.body.sha256, sha(data));
  });
});
