import assert from 'node:assert/strict';
import { createServer, request as httpRequest } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import sharp from 'sharp';
import { IMAGES_AT_ONCE, IMAGES_WAITING } from '../../../src/modules/files/images.ts';
import { backends, startApp, type TestApp } from '../../support/app.ts';
import { eventually } from '../../support/eventually.ts';
import { postFile } from '../../support/files.ts';
import { createUser, type TestUser } from '../../support/factories.ts';
import { pdfWithText } from '../../support/pdf.ts';
import { startS3 } from '../../support/s3.ts';

/**
 * A real S3 server (s3rver) behind an HTTP proxy that holds the requests a test picks until it lets them go:
 * work stopped at a known point (an image whose original is being read, text about to be written).
 * Headers pass unchanged, so the SDK's signatures (made for the proxy's host) still hold.
 */
async function startHeldS3() {
  const s3 = await startS3();
  const target = new URL(s3.settings.endpoint!);
  let holds: ((method: string, path: string) => boolean) | undefined;
  const held: Array<{ method: string; path: string; pass: () => void }> = [];
  const proxy = createServer((req, res) => {
    const pass = () => {
      const upstream = httpRequest({ host: target.hostname, port: target.port, method: req.method, path: req.url, headers: req.headers }, (answer) => {
        res.writeHead(answer.statusCode!, answer.headers);
        answer.pipe(res);
      });
      upstream.on('error', () => res.destroy());
      req.pipe(upstream);
    };
    const path = decodeURIComponent(req.url!.split('?')[0]!);
    if (holds?.(req.method!, path)) held.push({ method: req.method!, path, pass });
    else pass();
  });
  await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
  const { port } = proxy.address() as AddressInfo;
  return {
    env: { ...s3.env, S3_ENDPOINT: `http://127.0.0.1:${port}` },
    held,
    /** Holds the requests `rule` picks from now on. */
    hold(rule: (method: string, path: string) => boolean) {
      holds = rule;
    },
    /** Lets every held request go on, and holds no more. */
    release() {
      holds = undefined;
      for (const h of held.splice(0)) h.pass();
    },
    async close() {
      this.release();
      proxy.closeAllConnections();
      await new Promise<void>((resolve) => proxy.close(() => resolve()));
      await s3.close();
    },
  };
}

const photo = (width: number, height: number) => sharp({ create: { width, height, channels: 3, background: '#3a6ea5' } }).png().toBuffer();

async function fetchBytes(t: TestApp, path: string, u: TestUser) {
  const res = await fetch(`${t.url}${path}`, { headers: { authorization: `Bearer ${u.accessToken}` } });
  return { status: res.status, headers: res.headers, bytes: Buffer.from(await res.arrayBuffer()) };
}

for (const backend of backends()) {
  describe(`files: work held mid-way [${backend}, S3 storage]`, () => {
    let t: TestApp;
    let store: Awaited<ReturnType<typeof startHeldS3>>;
    let u: TestUser;
    /** Images whose originals' reads are held: they keep the turns IMAGES_AT_ONCE allows. */
    let slow: string[];
    /** An image read at once: its variants wait in line. */
    let quick: string;
    before(async () => {
      store = await startHeldS3();
      t = await startApp({ backend, env: store.env });
      u = await createUser(t);
      const images = [];
      for (let i = 0; i < IMAGES_AT_ONCE + 1; i++) {
        const up = await postFile(t, u, `p${i}.png`, await photo(64, 48));
        assert.equal(up.status, 201, up.text);
        images.push(up.body.id as string);
      }
      // Their thumbnails (which read the originals too) made first, so only the variants below are held.
      for (const id of images) {
        await eventually(async () => assert.equal((await t.api('GET', `/v1/files/${id}`, { token: u.accessToken })).body.thumbnail, 'ready'), 20_000);
      }
      quick = images.pop()!;
      slow = images;
    });
    after(async () => {
      await t.close();
      await store.close();
    });

    /** Every turn taken by a variant whose original's read is held; resolves with their (pending) responses. */
    async function takeEveryTurn(width: number) {
      store.hold((method, path) => method === 'GET' && slow.some((id) => path.endsWith(`/${id}/original`)));
      const running = slow.map((id) => fetchBytes(t, `/v1/files/${id}/content?width=${width}`, u));
      await eventually(() => assert.equal(store.held.length, IMAGES_AT_ONCE));
      assert.equal(t.services.images.stats().running, IMAGES_AT_ONCE);
      return running;
    }

    test(`past ${IMAGES_WAITING} variant requests waiting for a turn, one more is 503 images_busy with Retry-After at once; a kept variant is still served; those in line are all made`, { timeout: 60_000 }, async () => {
      assert.equal((await fetchBytes(t, `/v1/files/${quick}/content?width=200`, u)).status, 200);
      const running = await takeEveryTurn(20);
      const inLine = Array.from({ length: IMAGES_WAITING }, (_, i) => fetchBytes(t, `/v1/files/${quick}/content?width=${30 + i}`, u));
      await eventually(() => assert.equal(t.services.images.stats().waiting, IMAGES_WAITING));

      const refused = await fetchBytes(t, `/v1/files/${quick}/content?width=99`, u);
      assert.equal(refused.status, 503);
      assert.match(refused.headers.get('content-type')!, /problem\+json/);
      const problem = JSON.parse(refused.bytes.toString()) as { code: string; retryAfter: number };
      assert.equal(problem.code, 'images_busy');
      assert.ok(Number(refused.headers.get('retry-after')) >= 1, `Retry-After ${refused.headers.get('retry-after')}`);
      assert.equal(problem.retryAfter, Number(refused.headers.get('retry-after')));
      assert.equal((await fetchBytes(t, `/v1/files/${quick}/content?width=200`, u)).status, 200, 'a variant kept already takes no turn');

      store.release();
      for (const res of await Promise.all([...running, ...inLine])) assert.equal(res.status, 200, res.bytes.toString().slice(0, 200));
      assert.deepEqual([t.services.images.stats().running, t.services.images.stats().waiting], [0, 0]);
      assert.equal((await fetchBytes(t, `/v1/files/${quick}/content?width=99`, u)).status, 200, 'room again');
    });

    test('a request whose client leaves while its variant waits for a turn leaves the line: the variant is never made', { timeout: 60_000 }, async () => {
      const running = await takeEveryTurn(21);
      const before = t.services.images.stats();
      const leaving = new AbortController();
      const gone = fetch(`${t.url}/v1/files/${quick}/content?width=300`, { headers: { authorization: `Bearer ${u.accessToken}` }, signal: leaving.signal }).catch(() => 'aborted');
      await eventually(() => assert.equal(t.services.images.stats().waiting, 1));
      leaving.abort();
      assert.equal(await gone, 'aborted');
      await eventually(() => assert.deepEqual([t.services.images.stats().waiting, t.services.images.stats().abandoned], [0, before.abandoned + 1]));

      store.release();
      for (const res of await Promise.all(running)) assert.equal(res.status, 200);
      // Those running were counted as their turns began, before `before`.
      assert.equal(t.services.images.stats().made, before.made, 'only the variants still wanted were made');
      assert.equal(t.services.images.stats().inflight, 0);
    });

    test('text read out of a file that is deleted meanwhile is not left in storage, whenever its write lands', async () => {
      const up = await postFile(t, u, 'doc.pdf', pdfWithText('Held in the middle'));
      assert.equal(up.status, 201, up.text);
      const prefix = `files/${u.id}/${up.body.id}/`;
      const file = await t.services.files.get(u.id, up.body.id);
      store.hold((method, path) => method === 'PUT' && path.endsWith(`/${up.body.id}/text.txt`));
      const reading = t.services.files.textOf(file);
      await eventually(() => assert.equal(store.held.length, 1), 30_000);
      // Deleted, and its blobs purged, while its text is on its way to storage.
      assert.equal((await t.api('DELETE', `/v1/files/${up.body.id}`, { token: u.accessToken })).status, 204);
      await eventually(async () => assert.deepEqual(await t.deps.storage.keys(prefix), []), 15_000);

      store.release();
      assert.match((await reading) ?? '', /Held in the middle/, 'the caller still gets the text it asked for');
      assert.deepEqual(await t.deps.storage.keys(prefix), [], 'no orphaned text.txt');
    });
  });
}
