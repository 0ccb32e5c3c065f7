import { randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, open, readdir, rename, rm, stat, unlink } from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { checkKey, type Storage } from './storage.ts';

const missing = (err: unknown) => (err as NodeJS.ErrnoException).code === 'ENOENT';

/**
 * Objects as files under `root`, one per key. A write goes to a temporary
 * file beside its target and is renamed over it once complete, so a reader
 * sees the old bytes or the new, never half, and a failed write leaves
 * nothing behind.
 */
export function diskStorage(root: string): Storage {
  const pathOf = (key: string) => path.join(root, ...key.split('/'));

  /** The keys of the objects under `dir` (partial writes are not objects). */
  async function keysIn(dir: string, key: string): Promise<string[]> {
    const found: string[] = [];
    for (const entry of await readdir(dir, { withFileTypes: true }).catch((err) => (missing(err) ? [] : Promise.reject(err)))) {
      if (entry.isDirectory()) found.push(...(await keysIn(path.join(dir, entry.name), `${key}${entry.name}/`)));
      else if (!entry.name.includes('.partial-')) found.push(`${key}${entry.name}`);
    }
    return found;
  }
  const countFiles = async (dir: string) => (await keysIn(dir, '')).length;

  return {
    kind: 'disk',

    async put(key, body) {
      checkKey(key);
      const target = pathOf(key);
      await mkdir(path.dirname(target), { recursive: true, mode: 0o700 });
      const partial = `${target}.partial-${randomBytes(6).toString('hex')}`;
      try {
        await pipeline(body, createWriteStream(partial, { flags: 'wx' }));
        const { size } = await stat(partial);
        await rename(partial, target);
        return { size };
      } catch (err) {
        await unlink(partial).catch(() => {});
        throw err;
      }
    },

    async get(key, range) {
      checkKey(key);
      // Opened here, not when the stream is first read: a blob removed in between (an upload finishing, a file
      // deleted) is then either missing now or read whole, as an open file outlives its name.
      let handle;
      try {
        handle = await open(pathOf(key), 'r');
      } catch (err) {
        if (missing(err)) return undefined;
        throw err;
      }
      return handle.createReadStream(range ? { start: range.start, end: range.end } : {}) as Readable;
    },

    async stat(key) {
      checkKey(key);
      try {
        const s = await stat(pathOf(key));
        return s.isFile() ? { key, size: s.size } : undefined;
      } catch (err) {
        if (missing(err)) return undefined;
        throw err;
      }
    },

    async delete(key) {
      checkKey(key);
      await unlink(pathOf(key)).catch((err) => {
        if (!missing(err)) throw err;
      });
    },

    async keys(prefix) {
      checkKey(prefix, { prefix: true });
      return keysIn(pathOf(prefix.replace(/\/$/, '')), prefix.endsWith('/') ? prefix : `${prefix}/`);
    },

    async deletePrefix(prefix) {
      checkKey(prefix, { prefix: true });
      if (prefix.endsWith('/')) {
        const dir = pathOf(prefix.slice(0, -1));
        const n = await countFiles(dir);
        await rm(dir, { recursive: true, force: true });
        return n;
      }
      // A prefix inside a name: the matching files of its folder.
      const dir = path.dirname(pathOf(prefix));
      const start = path.basename(pathOf(prefix));
      let n = 0;
      for (const entry of await readdir(dir, { withFileTypes: true }).catch((err) => (missing(err) ? [] : Promise.reject(err)))) {
        if (!entry.name.startsWith(start)) continue;
        const p = path.join(dir, entry.name);
        n += entry.isDirectory() ? await countFiles(p) : 1;
        await rm(p, { recursive: true, force: true });
      }
      return n;
    },

    async ping() {
      await mkdir(root, { recursive: true, mode: 0o700 });
    },

    async close() {},
  };
}
