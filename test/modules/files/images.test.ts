import assert from 'node:assert/strict';
import { crc32, deflateSync } from 'node:zlib';
import { after, before, describe, test } from 'node:test';
import sharp from 'sharp';
import { IMAGES_AT_ONCE } from '../../../src/modules/files/images.ts';
import { backends, startApp, type Backend, type TestApp } from '../../support/app.ts';
import { postFile } from '../../support/files.ts';
import { eventually } from '../../support/eventually.ts';
import { createUser, type TestUser } from '../../support/factories.ts';
import { startS3, type LocalS3 } from '../../support/s3.ts';
import { connectAs, subscribe } from '../../support/ws.ts';

/** Pixels an image may hold in these tests: the photos below fit, the bombs do not. */
const MAX_PIXELS = 1_000_000;
/** Variants kept per file (the default, said here so the test does not depend on it). */
const MAX_VARIANTS = 16;

const photo = (width: number, height: number) =>
  sharp({ create: { width, height, channels: 3, background: '#3a6ea5' } })
    .composite([{ input: { create: { width: Math.floor(width / 2), height: Math.floor(height / 2), channels: 4, background: '#f0c040ff' } } }])
    .png()
    .toBuffer();

/** A PNG of a few hundred bytes whose header claims 60000×60000 pixels (3.6 gigapixels): a decompression bomb. */
function pngBomb(): Buffer {
  const chunk = (type: string, data: Buffer) => {
    const body = Buffer.concat([Buffer.from(type, 'ascii'), data]);
    const len = Buffer.alloc(4);
    len.writeUInt32BE(data.length);
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(crc32(body));
    return Buffer.concat([len, body, crc]);
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(60_000, 0);
  ihdr.writeUInt32BE(60_000, 4);
  ihdr.set([1, 0, 0, 0, 0], 8); // 1 bit per pixel, greyscale, deflate, no filter, no interlace
  // The first rows, all zeros: compresses to almost nothing.
  return Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), chunk('IHDR', ihdr), chunk('IDAT', deflateSync(Buffer.alloc(8 * 7501))), chunk('IEND', Buffer.alloc(0))]);
}

/** A JPEG over the pixel limit whose frame header sits past what the upload reads first (a large EXIF block before it). */
const farHeaderJpeg = () =>
  sharp({ create: { width: 1200, height: 1000, channels: 3, background: '#336699' } })
    .jpeg()
    .withExif({ IFD0: { Copyright: 'x'.repeat(6000) } })
    .toBuffer();

async function fetchBytes(t: TestApp, path: string, u?: TestUser, headers: Record<string, string> = {}) {
  const res = await fetch(`${t.url}${path}`, { headers: { ...(u && { authorization: `Bearer ${u.accessToken}` }), ...headers } });
  return { status: res.status, headers: res.headers, bytes: Buffer.from(await res.arrayBuffer()) };
}

const problem = (bytes: Buffer) => JSON.parse(bytes.toString()) as { code: string; [field: string]: unknown };

async function thumbnailState(t: TestApp, u: TestUser, id: string, state: string) {
  return eventually(async () => {
    const file = await t.api('GET', `/v1/files/${id}`, { token: u.accessToken });
    assert.equal(file.body.thumbnail, state);
    return file.body;
  }, 20_000);
}

/** Blobs and rows under the user. */
async function stored(t: TestApp, u: TestUser) {
  const list = await t.api('GET', '/v1/files?limit=100', { token: u.accessToken });
  return { rows: list.body.data.length, blobs: (await t.deps.storage.keys(`files/${u.id}/`)).length };
}

const setups: Array<{ name: string; backend: Backend; s3?: boolean }> = [
  ...backends().map((backend) => ({ name: backend, backend })),
  { name: 'embedded, S3 storage', backend: 'embedded', s3: true },
];

for (const setup of setups) {
  describe(`file images [${setup.name}]`, () => {
    let t: TestApp;
    let s3: LocalS3 | undefined;
    let u: TestUser;
    let stranger: TestUser;
    let image: { id: string };
    before(async () => {
      s3 = setup.s3 ? await startS3() : undefined;
      t = await startApp({ backend: setup.backend, env: { FILES_MAX_IMAGE_PIXELS: String(MAX_PIXELS), FILES_MAX_VARIANTS: String(MAX_VARIANTS), ...s3?.env } });
      u = await createUser(t);
      stranger = await createUser(t);
    });
    after(async () => {
      await t.close();
      await s3?.close();
    });

    test('an uploaded image gets a WebP thumbnail from a background job; the owner hears its progress, then that it is ready', async () => {
      const socket = await connectAs(t, u.accessToken);
      try {
        assert.equal((await subscribe(socket, 'files')).type, 'subscribed');
        const up = await postFile(t, u, 'wide.png', await photo(640, 480));
        assert.equal(up.status, 201, up.text);
        assert.equal(up.body.thumbnail, 'pending');
        image = up.body;
        const isThumb = (type: string) => (f: { type: string; event?: { type: string; payload: { fileId: string } } }) => f.type === 'event' && f.event?.type === type && f.event.payload.fileId === up.body.id;
        // The first of the two kinds to arrive must be progress.
        const progress = await socket.next((f) => isThumb('file.thumbnail.progress')(f) || isThumb('file.thumbnail.ready')(f), 20_000);
        assert.equal(progress.event.type, 'file.thumbnail.progress');
        assert.equal(progress.event.payload.percent, 100, 'a small file is read in one go');
        const ready = await socket.next(isThumb('file.thumbnail.ready'), 20_000);
        assert.deepEqual(ready.event.payload, { userId: u.id, fileId: up.body.id, width: 256, height: 192 });
      } finally {
        await socket.close();
      }
      assert.equal((await t.api('GET', `/v1/files/${image.id}`, { token: u.accessToken })).body.thumbnail, 'ready');
      const thumb = await fetchBytes(t, `/v1/files/${image.id}/thumbnail`, u);
      assert.equal(thumb.status, 200);
      assert.equal(thumb.headers.get('content-type'), 'image/webp');
      assert.equal(thumb.headers.get('x-content-type-options'), 'nosniff');
      const meta = await sharp(thumb.bytes).metadata();
      assert.deepEqual([meta.format, meta.width, meta.height], ['webp', 256, 192], 'at most 256 px, aspect kept');
      assert.equal((await fetchBytes(t, `/v1/files/${image.id}/thumbnail`, u, { 'if-none-match': thumb.headers.get('etag')! })).status, 304);
    });

    test('a non-image has no thumbnail (null, 404 no_thumbnail)', async () => {
      const up = await postFile(t, u, 'notes.txt', Buffer.from('just words'));
      assert.equal(up.body.thumbnail, null);
      const res = await fetchBytes(t, `/v1/files/${up.body.id}/thumbnail`, u);
      assert.equal(res.status, 404);
      assert.equal(problem(res.bytes).code, 'no_thumbnail');
    });

    test('transforms give the size and format asked for, each kept under the file\'s variants/ with its own ETag and the original\'s safety headers', async () => {
      const cases: Array<[string, string, number, number]> = [
        ['width=100&height=100&fit=cover&format=png', 'png', 100, 100],
        ['width=200', 'png', 200, 150],
        ['height=60&format=jpeg', 'jpeg', 80, 60],
        ['width=100&height=50&fit=contain&format=webp', 'webp', 100, 50],
        ['width=100&height=100&fit=inside&format=avif', 'heif', 100, 75],
      ];
      const original = await fetchBytes(t, `/v1/files/${image.id}/content`, u);
      for (const [query, format, width, height] of cases) {
        const res = await fetchBytes(t, `/v1/files/${image.id}/content?${query}`, u);
        assert.equal(res.status, 200, `${query}: ${res.bytes.toString().slice(0, 200)}`);
        const meta = await sharp(res.bytes).metadata();
        assert.deepEqual([meta.format, meta.width, meta.height], [format, width, height], query);
        assert.equal(res.headers.get('x-content-type-options'), 'nosniff');
        assert.match(res.headers.get('content-security-policy')!, /sandbox/);
        assert.notEqual(res.headers.get('etag'), original.headers.get('etag'));
        assert.equal((await fetchBytes(t, `/v1/files/${image.id}/content?${query}`, u, { 'if-none-match': res.headers.get('etag')! })).status, 304, query);
      }
      const variants = await t.deps.storage.keys(`files/${u.id}/${image.id}/variants/`);
      assert.equal(variants.length, cases.length);
      assert.ok(variants.includes(`files/${u.id}/${image.id}/variants/w200-hauto-cover.png`), variants.join());
    });

    test('concurrent requests for one variant make it once; later ones read it from storage', async () => {
      const before = t.services.images.stats().made;
      const path = `/v1/files/${image.id}/content?width=123&format=webp`;
      const all = await Promise.all(Array.from({ length: 8 }, () => fetchBytes(t, path, u)));
      for (const res of all) {
        assert.equal(res.status, 200);
        assert.deepEqual(res.bytes, all[0]!.bytes);
      }
      assert.equal(t.services.images.stats().made, before + 1, 'made once for eight requests');
      assert.equal((await fetchBytes(t, path, u)).status, 200);
      assert.equal(t.services.images.stats().made, before + 1, 'the next request is served from storage');
      assert.ok(await t.deps.storage.stat(`files/${u.id}/${image.id}/variants/w123-hauto-cover.webp`));
    });

    test('past FILES_MAX_VARIANTS variants of one file, a new one is made and served but not kept; the kept ones are still read from storage', async () => {
      const small = await postFile(t, u, 'small.png', await photo(64, 48));
      assert.equal(small.status, 201, small.text);
      const folder = `files/${u.id}/${small.body.id}/variants/`;
      const widths = Array.from({ length: MAX_VARIANTS }, (_, i) => 10 + i);
      for (const width of widths) assert.equal((await fetchBytes(t, `/v1/files/${small.body.id}/content?width=${width}&format=webp`, u)).status, 200);
      assert.equal((await t.deps.storage.keys(folder)).length, MAX_VARIANTS);

      const before = t.services.images.stats();
      const path = `/v1/files/${small.body.id}/content?width=40&format=png`;
      for (const round of [1, 2]) {
        const extra = await fetchBytes(t, path, u);
        assert.equal(extra.status, 200, extra.bytes.toString().slice(0, 200));
        assert.equal(extra.headers.get('content-type'), 'image/png');
        assert.equal(Number(extra.headers.get('content-length')), extra.bytes.length);
        const meta = await sharp(extra.bytes).metadata();
        assert.deepEqual([meta.format, meta.width, meta.height], ['png', 40, 30]);
        assert.equal((await fetchBytes(t, path, u, { 'if-none-match': extra.headers.get('etag')! })).status, 304);
        assert.equal(t.services.images.stats().made, before.made + round, 'made again for each request');
      }
      const kept = await t.deps.storage.keys(folder);
      assert.equal(kept.length, MAX_VARIANTS, 'nothing more kept');
      assert.ok(!kept.includes(`${folder}w40-hauto-cover.png`), kept.join());
      assert.equal(t.services.images.stats().notKept, before.notKept + 2);
      assert.equal((await fetchBytes(t, `/v1/files/${small.body.id}/content?width=10&format=webp`, u)).status, 200);
      assert.equal(t.services.images.stats().made, before.made + 2, 'a kept variant is read back, not made');
    });

    test('a variant is at most 2048 px a side whatever is asked: without a size, the image scaled down to fit (never enlarged); one side or `outside` on a long image likewise', async () => {
      const banner = await postFile(t, u, 'banner.png', await photo(4000, 200));
      assert.equal(banner.status, 201, banner.text);
      const cases: Array<[string, string, string, number, number]> = [
        [banner.body.id, 'format=webp', 'webp', 2048, 102],
        [banner.body.id, 'format=avif', 'heif', 2048, 102],
        [banner.body.id, 'height=2048', 'png', 2048, 102],
        [banner.body.id, 'width=2048&height=2048&fit=outside&format=jpeg', 'jpeg', 2048, 102],
        [banner.body.id, 'width=100&height=10&fit=outside', 'png', 200, 10],
        [banner.body.id, 'height=100', 'png', 2000, 100],
        [image.id, 'format=webp', 'webp', 640, 480],
      ];
      for (const [id, query, format, width, height] of cases) {
        const res = await fetchBytes(t, `/v1/files/${id}/content?${query}`, u);
        assert.equal(res.status, 200, `${query}: ${res.bytes.toString().slice(0, 200)}`);
        const meta = await sharp(res.bytes).metadata();
        assert.deepEqual([meta.format, meta.width, meta.height], [format, width, height], query);
      }
    });

    test('variants asked for at once are all made, no more than IMAGES_AT_ONCE at a time (the others wait their turn)', async () => {
      const before = t.services.images.stats().made;
      const widths = [301, 302, 303, 304, 305, 306];
      const all = await Promise.all(widths.map((width) => fetchBytes(t, `/v1/files/${image.id}/content?width=${width}&format=avif`, u)));
      for (const [i, res] of all.entries()) {
        assert.equal(res.status, 200, res.bytes.toString().slice(0, 200));
        assert.equal((await sharp(res.bytes).metadata()).width, widths[i]);
      }
      const stats = t.services.images.stats();
      assert.equal(stats.made, before + widths.length);
      assert.ok(stats.mostRunning >= 1 && stats.mostRunning <= IMAGES_AT_ONCE, `${stats.mostRunning} made at once`);
      assert.deepEqual([stats.running, stats.waiting], [0, 0]);
    });

    test('bad or oversized parameters are 400; transforming a file that is not an image is 415', async () => {
      for (const query of ['width=0', 'width=2049', 'height=-3', 'width=abc', 'width=1.5', 'fit=stretch&width=10', 'format=gif', 'format=svg', 'fit=cover']) {
        const res = await fetchBytes(t, `/v1/files/${image.id}/content?${query}`, u);
        assert.equal(res.status, 400, `${query}: ${res.bytes.toString().slice(0, 200)}`);
        assert.match(res.headers.get('content-type')!, /problem\+json/);
      }
      const text = await postFile(t, u, 'a.txt', Buffer.from('words'));
      const res = await fetchBytes(t, `/v1/files/${text.body.id}/content?width=10`, u);
      assert.equal(res.status, 415);
      assert.equal(problem(res.bytes).code, 'not_an_image');
      assert.equal((await fetchBytes(t, `/v1/files/${text.body.id}/content?width=10`, u, { 'if-none-match': '*' })).status, 415, 'not a 304 either');
      assert.equal(t.services.images.stats().inflight, 0);
    });

    test('a pixel bomb is refused at upload from its header (422 image_too_large), leaving no row or blob', async () => {
      const owner = await createUser(t);
      const before = await stored(t, owner);
      const res = await postFile(t, owner, 'bomb.png', pngBomb());
      assert.equal(res.status, 422, res.text);
      assert.deepEqual([res.body.code, res.body.width, res.body.height, res.body.limit], ['image_too_large', 60_000, 60_000, MAX_PIXELS]);
      assert.deepEqual(await stored(t, owner), before);
    });

    test('an oversized image whose header the upload did not see is refused when decoded: thumbnail failed, transform 422, no variant left', async () => {
      const socket = await connectAs(t, u.accessToken);
      try {
        assert.equal((await subscribe(socket, 'files')).type, 'subscribed');
        const up = await postFile(t, u, 'big.jpg', await farHeaderJpeg());
        assert.equal(up.status, 201, up.text);
        assert.equal(up.body.thumbnail, 'pending');
        const failed = await socket.next((f) => f.type === 'event' && f.event?.type === 'file.thumbnail.failed' && f.event.payload.fileId === up.body.id, 20_000);
        assert.equal(failed.event.payload.code, 'image_too_large');
        await thumbnailState(t, u, up.body.id, 'failed');
        assert.equal(problem((await fetchBytes(t, `/v1/files/${up.body.id}/thumbnail`, u)).bytes).code, 'thumbnail_failed');
        const res = await fetchBytes(t, `/v1/files/${up.body.id}/content?width=100`, u);
        assert.equal(res.status, 422);
        assert.equal(problem(res.bytes).code, 'image_too_large');
        assert.deepEqual(await t.deps.storage.keys(`files/${u.id}/${up.body.id}/`), [`files/${u.id}/${up.body.id}/original`]);
      } finally {
        await socket.close();
      }
    });

    test('a signed link can be bound to a variant: it serves that variant, and changing a parameter is 403', async () => {
      const made = await t.api('POST', `/v1/files/${image.id}/url`, { token: u.accessToken, body: { expiresIn: 60, width: 64, format: 'webp' } });
      assert.equal(made.status, 200, made.text);
      const url = new URL(made.body.url);
      const ok = await fetchBytes(t, `${url.pathname}${url.search}`);
      assert.equal(ok.status, 200);
      const meta = await sharp(ok.bytes).metadata();
      assert.deepEqual([meta.format, meta.width], ['webp', 64]);
      const tampered = new URLSearchParams(url.search);
      tampered.set('width', '65');
      assert.equal((await fetchBytes(t, `${url.pathname}?${tampered}`)).status, 403);
      const dropped = new URLSearchParams(url.search);
      dropped.delete('format');
      assert.equal((await fetchBytes(t, `${url.pathname}?${dropped}`)).status, 403, 'a parameter removed');
      const plain = new URL((await t.api('POST', `/v1/files/${image.id}/url`, { token: u.accessToken, body: {} })).body.url);
      assert.equal((await fetchBytes(t, `${plain.pathname}${plain.search}`)).status, 200);
      assert.equal((await fetchBytes(t, `${plain.pathname}${plain.search}&width=10`)).status, 403, 'a link to the original is no link to a variant');
      assert.equal((await t.api('POST', `/v1/files/${image.id}/url`, { token: u.accessToken, body: { width: 5000 } })).status, 400);
    });

    test('another user gets 404 for the thumbnail, transforms and a variant link', async () => {
      for (const path of [`/v1/files/${image.id}/thumbnail`, `/v1/files/${image.id}/content?width=50`]) {
        assert.equal((await fetchBytes(t, path, stranger)).status, 404, path);
      }
      assert.equal((await t.api('POST', `/v1/files/${image.id}/url`, { token: stranger.accessToken, body: { width: 50 } })).status, 404);
    });

    test('deleting removes the original, the thumbnail and every variant (a queued job)', async () => {
      const up = await postFile(t, u, 'doomed.png', await photo(300, 200));
      await thumbnailState(t, u, up.body.id, 'ready');
      assert.equal((await fetchBytes(t, `/v1/files/${up.body.id}/content?width=30`, u)).status, 200);
      const keys = await t.deps.storage.keys(`files/${u.id}/${up.body.id}/`);
      assert.equal(keys.length, 3, keys.join());
      assert.equal((await t.api('DELETE', `/v1/files/${up.body.id}`, { token: u.accessToken })).status, 204);
      assert.equal((await fetchBytes(t, `/v1/files/${up.body.id}/content?width=30`, u)).status, 404);
      await eventually(async () => assert.deepEqual(await t.deps.storage.keys(`files/${u.id}/${up.body.id}/`), []), 15_000);
      const { jobs } = await t.services.jobs.list({ queue: 'files.purge', limit: 100 });
      const purge = jobs.find((j) => (j.data as { fileId: string }).fileId === up.body.id);
      assert.equal(purge?.maxAttempts, 12, 'a job that retries, not a one-off delete');
    });
  });
}
