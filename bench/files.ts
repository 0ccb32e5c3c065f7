// npm run bench:files — upload and download throughput of Parley's files API
// on disk and on an S3-compatible server (s3rver on loopback), beside a plain
// copy of the same file and a direct S3 PUT through the same storage adapter,
// in one run; and the server process's peak RSS while a large file streams
// in from curl (it must not grow with the file's size). Parley, the clients
// and s3rver share the machine; every request goes to 127.0.0.1.
// Then images: thumbnails per second made by the background job after a
// burst of photo uploads, and on-demand transforms (GET …/content?width=)
// p50/p99 when the variant is made (cold) and when it is read back from the
// store (cached). BENCH_FILES_PARTS=images runs only the images part.
import { createReadStream, createWriteStream, mkdtempSync, rmSync, statSync } from 'node:fs';
import { copyFile } from 'node:fs/promises';
import { cpus, loadavg, tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { randomBytes } from 'node:crypto';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import sharp from 'sharp';
import { diskStorage } from '../src/platform/storage/disk-storage.ts';
import { s3Storage } from '../src/platform/storage/s3-storage.ts';
import { startWorker } from '../src/worker.ts';
import { startApp, type TestApp } from '../test/support/app.ts';
import { startS3, type LocalS3 } from '../test/support/s3.ts';

const run = promisify(execFile);
const MB = 1024 * 1024;
const SMALL = { bytes: 1 * MB, count: 20 };
const LARGE = 200 * MB;
const HUGE = Number(process.env.BENCH_FILES_HUGE_MB ?? 1024) * MB;

const IMAGES = { photos: 20, width: 1600, height: 1200, transforms: 100 };
const PARTS = (process.env.BENCH_FILES_PARTS ?? 'throughput,images').split(',');

const dir = mkdtempSync(path.join(tmpdir(), 'parley-bench-files-'));

async function makeFile(bytes: number): Promise<string> {
  const file = path.join(dir, `src-${bytes}.bin`);
  // Text (hex), so the sniffed type is text/plain, which the default allow-list takes.
  const chunk = Buffer.from(randomBytes(MB / 2).toString('hex'));
  let left = bytes;
  await pipeline(
    Readable.from(
      (function* () {
        while (left > 0) {
          const n = Math.min(left, MB);
          left -= n;
          yield n === MB ? chunk : chunk.subarray(0, n);
        }
      })(),
    ),
    createWriteStream(file),
  );
  return file;
}

/** A multipart body streamed from a file: nothing of it is held in memory by the client either. */
function multipart(file: string): { body: ReadableStream<Uint8Array>; type: string; length: number } {
  const boundary = `----parley${randomBytes(8).toString('hex')}`;
  const head = Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="data.txt"\r\nContent-Type: application/octet-stream\r\n\r\n`);
  const tail = Buffer.from(`\r\n--${boundary}--\r\n`);
  const size = statSync(file).size;
  async function* parts() {
    yield head;
    for await (const c of createReadStream(file, { highWaterMark: MB })) yield c as Buffer;
    yield tail;
  }
  return { body: Readable.toWeb(Readable.from(parts())) as ReadableStream<Uint8Array>, type: `multipart/form-data; boundary=${boundary}`, length: head.length + size + tail.length };
}

async function upload(t: TestApp, token: string, file: string): Promise<{ id: string; ms: number }> {
  const { body, type, length } = multipart(file);
  const started = performance.now();
  const res = await fetch(`${t.url}/v1/files`, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': type, 'content-length': String(length) }, body, duplex: 'half' } as RequestInit);
  const text = await res.text();
  if (res.status !== 201) throw new Error(`upload: ${res.status} ${text.slice(0, 300)}`);
  return { id: JSON.parse(text).id, ms: performance.now() - started };
}

async function download(t: TestApp, token: string, id: string): Promise<number> {
  const started = performance.now();
  const res = await fetch(`${t.url}/v1/files/${id}/content`, { headers: { authorization: `Bearer ${token}` } });
  if (res.status !== 200 || !res.body) throw new Error(`download: ${res.status}`);
  const reader = res.body.getReader();
  for (;;) if ((await reader.read()).done) break;
  return performance.now() - started;
}

/** A photo-like JPEG (noise compresses as poorly as a real photo). */
const photo = (seed: number) =>
  sharp({ create: { width: IMAGES.width, height: IMAGES.height, channels: 3, background: '#808080', noise: { type: 'gaussian', mean: 96 + seed, sigma: 40 } } })
    .jpeg({ quality: 85 })
    .toBuffer();

async function uploadBytes(t: TestApp, token: string, name: string, bytes: Buffer): Promise<string> {
  const form = new FormData();
  form.append('file', new Blob([bytes]), name);
  const res = await fetch(`${t.url}/v1/files`, { method: 'POST', headers: { authorization: `Bearer ${token}` }, body: form });
  const text = await res.text();
  if (res.status !== 201) throw new Error(`upload: ${res.status} ${text.slice(0, 300)}`);
  return JSON.parse(text).id;
}

const percentile = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
const spread = (sorted: number[]) => `p50 ${percentile(sorted, 50).toFixed(1)} ms, p90 ${percentile(sorted, 90).toFixed(1)}, p99 ${percentile(sorted, 99).toFixed(1)}, max ${sorted.at(-1)!.toFixed(1)}`;

async function timedGet(t: TestApp, token: string, path: string): Promise<number> {
  const started = performance.now();
  const res = await fetch(`${t.url}${path}`, { headers: { authorization: `Bearer ${token}` } });
  await res.arrayBuffer();
  if (res.status !== 200) throw new Error(`${path}: ${res.status}`);
  return performance.now() - started;
}

/** Thumbnails per second after a burst of uploads, and transform latency cold (made) vs cached (read back). */
async function imagesBench(name: string, env: Record<string, string>): Promise<string[]> {
  // No worker until every photo is in: the thumbnails are then timed alone, not behind the uploads.
  const t = await startApp({ env, worker: false });
  let worker: Awaited<ReturnType<typeof startWorker>> | undefined;
  try {
    const reg = await t.api('POST', '/v1/auth/register', { body: { email: `bench-img-${Date.now()}@example.com`, password: 'bench password 123' } });
    const token: string = reg.body.accessToken;
    const photos = await Promise.all(Array.from({ length: IMAGES.photos }, (_, i) => photo(i)));
    const before = t.services.images.stats().thumbnails;
    const ids: string[] = [];
    for (const [i, bytes] of photos.entries()) ids.push(await uploadBytes(t, token, `photo-${i}.jpg`, bytes));
    const started = performance.now();
    worker = await startWorker(t.deps);
    while (t.services.images.stats().thumbnails < before + IMAGES.photos) await new Promise((r) => setTimeout(r, 10));
    const done = performance.now();
    const list = await t.api('GET', `/v1/files?limit=${IMAGES.photos}`, { token });
    if (list.body.data.some((f: { thumbnail: string }) => f.thumbnail !== 'ready')) throw new Error('a thumbnail is not ready');
    const cold: number[] = [];
    const cached: number[] = [];
    const path = (i: number) => `/v1/files/${ids[i % ids.length]}/content?width=${200 + i}&format=webp`;
    // One transform first, not counted: libvips loads its WebP encoder on first use.
    await timedGet(t, token, `/v1/files/${ids[0]}/content?width=100&format=webp`);
    for (let i = 0; i < IMAGES.transforms; i++) cold.push(await timedGet(t, token, path(i)));
    for (let i = 0; i < IMAGES.transforms; i++) cached.push(await timedGet(t, token, path(i)));
    cold.sort((a, b) => a - b);
    cached.sort((a, b) => a - b);
    const kb = photos.reduce((n, b) => n + b.length, 0) / photos.length / 1024;
    return [
      `| ${name} | ${IMAGES.photos} × ${IMAGES.width}×${IMAGES.height} JPEG (~${kb.toFixed(0)} KB) | ${((IMAGES.photos * 1000) / (done - started)).toFixed(1)} thumbnails/s (${((done - started) / IMAGES.photos).toFixed(0)} ms each, 2 at a time) | |`,
      `| ${name} | transform to ~200–260 px WebP, ${IMAGES.transforms} variants | cold ${spread(cold)} | cached ${spread(cached)} |`,
    ];
  } finally {
    await worker?.stop();
    await t.close();
  }
}

const mbps = (bytes: number, ms: number) => (bytes / MB / (ms / 1000)).toFixed(0);

/** Samples this process's RSS while `work` runs: [before, peak]. */
async function peakRss(work: () => Promise<unknown>): Promise<[number, number]> {
  globalThis.gc?.();
  const before = process.memoryUsage().rss;
  let peak = before;
  const timer = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 20);
  try {
    await work();
  } finally {
    clearInterval(timer);
  }
  return [before, Math.max(peak, process.memoryUsage().rss)];
}

async function bench(name: string, env: Record<string, string>, direct: (file: string) => Promise<number>) {
  const t = await startApp({ env: { FILES_MAX_BYTES: String(HUGE + MB), FILES_QUOTA_BYTES: String(50 * HUGE), ...env } });
  try {
    const reg = await t.api('POST', '/v1/auth/register', { body: { email: `bench-${Date.now()}@example.com`, password: 'bench password 123' } });
    const token: string = reg.body.accessToken;
    const rows: string[] = [];
    const small = await makeFile(SMALL.bytes);
    let up = 0;
    let down = 0;
    for (let i = 0; i < SMALL.count; i++) {
      const u = await upload(t, token, small);
      up += u.ms;
      down += await download(t, token, u.id);
    }
    const large = await makeFile(LARGE);
    const lu = await upload(t, token, large);
    const ld = await download(t, token, lu.id);
    const directMs = await direct(large);
    rows.push(`| ${name} | 1 MB × ${SMALL.count} | ${mbps(SMALL.bytes * SMALL.count, up)} | ${mbps(SMALL.bytes * SMALL.count, down)} | ${(up / SMALL.count).toFixed(1)} ms / ${(down / SMALL.count).toFixed(1)} ms |`);
    rows.push(`| ${name} | 200 MB | ${mbps(LARGE, lu.ms)} | ${mbps(LARGE, ld)} | direct: ${mbps(LARGE, directMs)} MB/s |`);
    const huge = await makeFile(HUGE);
    // The large upload comes from curl, a process of its own, so the RSS measured is the server's alone.
    const [before, peak] = await peakRss(async () => {
      const { stdout } = await run('curl', ['-s', '-o', '/dev/null', '-w', '%{http_code}', '-H', `authorization: Bearer ${token}`, '-F', `file=@${huge};filename=data.txt`, `${t.url}/v1/files`]);
      if (stdout !== '201') throw new Error(`curl upload: ${stdout}`);
    });
    rows.push(`| ${name} | ${HUGE / MB} MB, peak RSS | ${((peak - before) / MB).toFixed(0)} MB over ${(before / MB).toFixed(0)} MB | | |`);
    rmSync(huge);
    return rows;
  } finally {
    await t.close();
  }
}

const out = [`Parley files bench — Node ${process.version}, ${cpus().length} × ${cpus()[0]?.model.trim()}, load average ${loadavg()[0]!.toFixed(1)} at start`, ''];
try {
  if (PARTS.includes('throughput')) {
    out.push('| store | file | upload MB/s | download MB/s | per call / direct |', '|---|---|--:|--:|---|');
    process.stderr.write('  disk…\n');
    const copyTo = diskStorage(path.join(dir, 'direct'));
    out.push(
      ...(await bench('disk', {}, async (file) => {
        const started = performance.now();
        await copyFile(file, path.join(dir, 'copy.bin'));
        const cp = performance.now() - started;
        await copyTo.put('x/y', createReadStream(file));
        return cp;
      })),
    );
    process.stderr.write('  s3…\n');
    const s3: LocalS3 = await startS3();
    try {
      const direct = s3Storage(s3.settings);
      out.push(
        ...(await bench('S3 (s3rver)', s3.env, async (file) => {
          const started = performance.now();
          await direct.put('direct/put', createReadStream(file));
          return performance.now() - started;
        })),
      );
      await direct.close();
    } finally {
      await s3.close();
    }
    out.push('', 'Direct: a plain file copy (fs.copyFile) on disk; a direct multipart PUT through the same S3 adapter on S3.', '');
  }
  if (PARTS.includes('images')) {
    out.push('| store | images | made | served |', '|---|---|---|---|');
    process.stderr.write('  images, disk…\n');
    out.push(...(await imagesBench('disk', {})));
    process.stderr.write('  images, s3…\n');
    const s3: LocalS3 = await startS3();
    try {
      out.push(...(await imagesBench('S3 (s3rver)', s3.env)));
    } finally {
      await s3.close();
    }
  }
  process.stdout.write(`${out.join('\n')}\n`);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
