import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { buffer } from 'node:stream/consumers';
import { after, before, describe, test } from 'node:test';
import { diskStorage } from '../../src/platform/storage/disk-storage.ts';
import { s3Storage } from '../../src/platform/storage/s3-storage.ts';
import type { Storage } from '../../src/platform/storage/storage.ts';
import { startS3, type LocalS3 } from '../support/s3.ts';

/** A body of `size` random bytes, produced in 64 KiB chunks as a network body would arrive. */
function randomBody(size: number): { body: Readable; sha256: string } {
  const data = randomBytes(size);
  const chunks: Buffer[] = [];
  for (let i = 0; i < size; i += 65_536) chunks.push(data.subarray(i, i + 65_536));
  return { body: Readable.from(chunks), sha256: createHash('sha256').update(data).digest('hex') };
}

/** A body that sends `before` bytes, then fails, as a dropped upload does. */
function failingBody(before: number): Readable {
  let sent = false;
  return new Readable({
    read() {
      if (!sent) {
        sent = true;
        this.push(randomBytes(before));
      } else this.destroy(new Error('client went away'));
    },
  });
}

const sha = async (s: Readable) => createHash('sha256').update(await buffer(s)).digest('hex');

const sides: Array<{ name: string; open(): Promise<{ storage: Storage; close(): Promise<void> }> }> = [
  {
    name: 'disk',
    async open() {
      const dir = mkdtempSync(path.join(tmpdir(), 'parley-storage-'));
      return { storage: diskStorage(dir), close: async () => rmSync(dir, { recursive: true, force: true }) };
    },
  },
  {
    name: 's3',
    async open() {
      const s3: LocalS3 = await startS3();
      const storage = s3Storage(s3.settings);
      return {
        storage,
        async close() {
          await storage.close();
          await s3.close();
        },
      };
    },
  },
];

for (const side of sides) {
  describe(`storage [${side.name}]`, () => {
    let storage: Storage;
    let close: () => Promise<void>;
    before(async () => ({ storage, close } = await side.open()));
    after(() => close());

    test('what is put comes back byte for byte, with its size; a missing key is undefined', async () => {
      const { body, sha256 } = randomBody(300_000);
      assert.deepEqual(await storage.put('u1/a/blob', body, { contentType: 'application/octet-stream' }), { size: 300_000 });
      assert.equal(await sha((await storage.get('u1/a/blob'))!), sha256);
      assert.equal((await storage.stat('u1/a/blob'))?.size, 300_000);
      assert.equal(await storage.get('u1/a/nothing'), undefined);
      assert.equal(await storage.stat('u1/a/nothing'), undefined);
    });

    test('a file larger than one multipart part streams through whole', async () => {
      const { body, sha256 } = randomBody(20 * 1024 * 1024 + 123);
      assert.equal((await storage.put('u1/big', body)).size, 20 * 1024 * 1024 + 123);
      assert.equal(await sha((await storage.get('u1/big'))!), sha256);
    });

    test('a range reads just those bytes', async () => {
      const data = Buffer.from('0123456789abcdef');
      await storage.put('u1/range', Readable.from([data]));
      assert.equal((await buffer((await storage.get('u1/range', { start: 3, end: 7 }))!)).toString(), '34567');
      assert.equal((await buffer((await storage.get('u1/range', { start: 10, end: 15 }))!)).toString(), 'abcdef');
    });

    test('a blob removed after get() is still read whole through the stream get() gave', async () => {
      const { body, sha256 } = randomBody(200_000);
      await storage.put('u1/going', body);
      const stream = (await storage.get('u1/going'))!;
      await storage.delete('u1/going');
      assert.equal(await sha(stream), sha256);
      assert.equal(await storage.get('u1/going'), undefined);
    });

    test('a put replaces what was there', async () => {
      await storage.put('u1/over', Readable.from([Buffer.from('first version')]));
      await storage.put('u1/over', Readable.from([Buffer.from('second')]));
      assert.equal((await buffer((await storage.get('u1/over'))!)).toString(), 'second');
      assert.equal((await storage.stat('u1/over'))?.size, 6);
    });

    test('a body that fails part-way leaves nothing at its key, and what was there stays', async () => {
      await assert.rejects(storage.put('u1/failed', failingBody(100_000)));
      assert.equal(await storage.stat('u1/failed'), undefined);
      await storage.put('u1/kept', Readable.from([Buffer.from('kept')]));
      await assert.rejects(storage.put('u1/kept', failingBody(9 * 1024 * 1024)));
      assert.equal((await buffer((await storage.get('u1/kept'))!)).toString(), 'kept');
    });

    test('delete is idempotent; deletePrefix removes a folder and says how many', async () => {
      for (const k of ['u2/f1/a', 'u2/f1/b', 'u2/f1/thumbs/c', 'u2/f2/a']) await storage.put(k, Readable.from([Buffer.from(k)]));
      await storage.delete('u2/f2/a');
      await storage.delete('u2/f2/a');
      assert.equal(await storage.stat('u2/f2/a'), undefined);
      assert.deepEqual((await storage.keys('u2/f1/')).sort(), ['u2/f1/a', 'u2/f1/b', 'u2/f1/thumbs/c']);
      assert.equal(await storage.deletePrefix('u2/f1/'), 3);
      assert.deepEqual(await storage.keys('u2/f1/'), []);
      for (const k of ['u2/f1/a', 'u2/f1/b', 'u2/f1/thumbs/c']) assert.equal(await storage.stat(k), undefined);
      assert.equal(await storage.deletePrefix('u2/none/'), 0);
    });

    test('keys that could escape or confuse the store are refused', async () => {
      for (const key of ['', '../x', 'a/../../x', '/abs', 'a//b', 'a/./b', 'a\\b', 'a b', 'a\u0000b', `${'x'.repeat(1025)}`]) {
        await assert.rejects(storage.put(key, Readable.from([Buffer.from('x')])), /invalid storage key/, JSON.stringify(key));
        await assert.rejects(storage.get(key), /invalid storage key/);
      }
    });

    test('ping answers while the store is there', async () => {
      await storage.ping();
    });
  });
}

test('disk: a failed write leaves no partial file behind', async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'parley-storage-'));
  try {
    const storage = diskStorage(dir);
    await assert.rejects(storage.put('u/x', failingBody(50_000)));
    assert.deepEqual(readdirSync(path.join(dir, 'u')), []);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
