import { Readable } from 'node:stream';
import { DataStore, ERRORS, Upload } from '@tus/server';
import type { Storage } from '../../platform/storage/storage.ts';

/** Chunk keys carry their start offset, zero-padded so they sort as numbers do. */
const OFFSET_DIGITS = 16;
const UPLOAD_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

interface Info {
  id: string;
  size?: number;
  metadata?: Record<string, string | null>;
  creation_date?: string;
}

/**
 * tus uploads kept in Parley's own Storage port, so they live wherever files
 * do (the data directory, or the bucket every instance shares) and any
 * instance can continue one. An upload is `uploads/<id>/info` (its length,
 * metadata and creation time) and one object per PATCH that wrote bytes,
 * `uploads/<id>/<start offset>`; its offset is the end of the last chunk.
 *
 * Why not @tus/file-store and @tus/s3-store: the S3 store depends on
 * ListParts, ListMultipartUploads and AbortMultipartUpload, which s3rver
 * (the S3 server the tests run against, and some S3-compatible services)
 * does not implement; and over the port one store behaves the same on disk
 * and on S3, so both sides are tested by the same code.
 *
 * A PATCH cut short still commits what arrived (tus ends the body stream
 * cleanly when the client goes), so a resumed upload continues from there.
 */
export class StorageUploadStore extends DataStore {
  readonly #storage: Storage;
  readonly #expiryMs: number;

  constructor(storage: Storage, opts: { expiryMs: number }) {
    super();
    this.#storage = storage;
    this.#expiryMs = opts.expiryMs;
    this.extensions = ['creation', 'creation-with-upload', 'termination', 'expiration'];
  }

  #dir(id: string): string {
    // Ids are ours (UUIDs); anything else cannot name an upload, nor a storage key.
    if (!UPLOAD_ID.test(id)) throw ERRORS.FILE_NOT_FOUND;
    return `uploads/${id}/`;
  }

  async #chunks(id: string): Promise<{ key: string; start: number }[]> {
    const dir = this.#dir(id);
    const keys = await this.#storage.keys(dir);
    return keys
      .map((key) => ({ key, name: key.slice(dir.length) }))
      .filter((k) => /^\d+$/.test(k.name))
      .map((k) => ({ key: k.key, start: Number(k.name) }))
      .sort((a, b) => a.start - b.start);
  }

  async #info(id: string): Promise<Info> {
    const body = await this.#storage.get(`${this.#dir(id)}info`);
    if (!body) throw ERRORS.FILE_NOT_FOUND;
    const parts: Buffer[] = [];
    for await (const chunk of body) parts.push(chunk as Buffer);
    return JSON.parse(Buffer.concat(parts).toString('utf8')) as Info;
  }

  /** An upload's metadata alone (one read, where getUpload also lists its chunks); ERRORS.FILE_NOT_FOUND when there is none. */
  async metadataOf(id: string): Promise<Record<string, string | null>> {
    return (await this.#info(id)).metadata ?? {};
  }

  override async create(upload: Upload): Promise<Upload> {
    upload.creation_date = new Date().toISOString();
    const info: Info = { id: upload.id, size: upload.size, metadata: upload.metadata, creation_date: upload.creation_date };
    await this.#storage.put(`${this.#dir(upload.id)}info`, Readable.from([Buffer.from(JSON.stringify(info))]), { contentType: 'application/json' });
    return upload;
  }

  override async write(stream: Readable, id: string, offset: number): Promise<number> {
    const key = `${this.#dir(id)}${String(offset).padStart(OFFSET_DIGITS, '0')}`;
    const { size } = await this.#storage.put(key, stream);
    // Nothing arrived: no chunk (an empty one would only be overwritten by the next).
    if (size === 0) await this.#storage.delete(key);
    return offset + size;
  }

  override async getUpload(id: string): Promise<Upload> {
    const info = await this.#info(id);
    const chunks = await this.#chunks(id);
    const last = chunks.at(-1);
    const offset = last ? last.start + ((await this.#storage.stat(last.key))?.size ?? 0) : 0;
    return new Upload({ id, size: info.size, offset, metadata: info.metadata, creation_date: info.creation_date });
  }

  /** The bytes received so far, chunk after chunk: one stream, never all in memory. */
  async read(id: string): Promise<Readable> {
    const chunks = await this.#chunks(id);
    const storage = this.#storage;
    return Readable.from(
      (async function* () {
        for (const c of chunks) {
          const body = await storage.get(c.key);
          if (!body) throw new Error(`upload chunk ${c.key} is missing`);
          yield* body;
        }
      })(),
      { objectMode: false },
    );
  }

  override async remove(id: string): Promise<void> {
    await this.#storage.deletePrefix(this.#dir(id));
  }

  override getExpiration(): number {
    return this.#expiryMs;
  }

  /** Removes every upload created longer ago than the expiry (finished ones are removed as they finish); returns how many. */
  override async deleteExpired(): Promise<number> {
    const ids = new Set((await this.#storage.keys('uploads/')).map((k) => k.split('/')[1]).filter((id): id is string => !!id && UPLOAD_ID.test(id)));
    let removed = 0;
    for (const id of ids) {
      const created = await this.#info(id).then(
        (info) => (info.creation_date ? Date.parse(info.creation_date) : 0),
        // No info: a creation that failed half-way, or bytes left after a removal raced a write.
        () => 0,
      );
      if (Date.now() - created <= this.#expiryMs) continue;
      await this.remove(id);
      removed++;
    }
    return removed;
  }
}
