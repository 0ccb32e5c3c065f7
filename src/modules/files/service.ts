import { createHash } from 'node:crypto';
import { pipeline, Readable, Transform } from 'node:stream';
import { fileTypeFromBuffer } from 'file-type';
import { uuidv7 } from 'uuidv7';
import { AppError, NotFound, ValidationError } from '../../errors.ts';
import { inTransaction, type Db } from '../../platform/db/database.ts';
import type { Announce } from '../../platform/bus/bus.ts';
import type { Signer } from '../../platform/crypto/cipher.ts';
import type { Logger } from '../../platform/observability/logger.ts';
import type { ByteRange, Storage } from '../../platform/storage/storage.ts';
import type { Projects } from '../projects/index.ts';
import type { Jobs } from '../jobs/index.ts';
import type { UsersService } from '../users/index.ts';
import { createExtraction } from './extract.ts';
import { canonicalTransform, declaredSize, IMAGE_TYPES, imageTooLarge, outputFormat, thumbnailKey, variantName, variantsFolder, type ImageTransform, type Images } from './images.ts';
import { PURGE_QUEUE, purgeJobOptions, THUMBNAIL_QUEUE, thumbnailJobOptions } from './jobs.ts';
import { createFilesRepository, type FileFilter } from './repository.ts';
import type { FileRow } from './schema.ts';
import type { FileSettings } from './settings.ts';
import { contentType, detectType, isAllowed, safeName } from './sniff.ts';

/** How long a presigned download URL works: long enough to start the download, short enough not to be a share link. */
const REDIRECT_SECONDS = 300;

/** Bytes read before deciding what a file is (file-type's own reasonable sample). */
const SAMPLE_BYTES = 4100;

export const toPublicFile = (f: FileRow) => ({
  id: f.id,
  name: f.name,
  mimeType: f.mimeType,
  size: f.size,
  sha256: f.sha256,
  thumbnail: f.thumbnail,
  projectId: f.projectId,
  conversationId: f.conversationId,
  createdAt: f.createdAt.toISOString(),
  updatedAt: f.updatedAt.toISOString(),
});

const tooLarge = (maxBytes: number) => new AppError(413, 'file_too_large', 'Payload too large', `A file may hold at most ${maxBytes} bytes`, { extra: { maxBytes } });
const overQuota = (used: number, limit: number) =>
  new AppError(413, 'quota_exceeded', 'Quota exceeded', `This upload would take your files beyond your storage quota (${used} of ${limit} bytes used)`, { extra: { used, limit } });
/**
 * The first `bytes` of a stream, and the stream to read it all from (the head
 * put back): a file is typed before anything of it is stored.
 */
function peek(stream: Readable, bytes: number): Promise<{ head: Buffer; body: Readable }> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let got = 0;
    const cleanup = () => {
      stream.off('readable', onReadable);
      stream.off('end', onEnd);
      stream.off('error', onError);
    };
    const onReadable = () => {
      let chunk: Buffer | null;
      while (got < bytes && (chunk = stream.read() as Buffer | null) !== null) {
        chunks.push(chunk);
        got += chunk.length;
      }
      if (got < bytes) return;
      cleanup();
      const all = Buffer.concat(chunks);
      stream.unshift(all);
      resolve({ head: all.subarray(0, bytes), body: stream });
    };
    // Shorter than the sample: all of it is in hand.
    const onEnd = () => {
      cleanup();
      const all = Buffer.concat(chunks);
      resolve({ head: all, body: Readable.from(all.length ? [all] : []) });
    };
    const onError = (err: unknown) => {
      cleanup();
      reject(err);
    };
    stream.on('readable', onReadable);
    stream.once('end', onEnd);
    stream.once('error', onError);
  });
}

const incomplete = (err: Error) => ValidationError(`The file could not be read to its end: ${err.message}`, 'upload_incomplete');
const refusedType = (detected: string, detail: string) => new AppError(415, 'unsupported_file_type', 'Unsupported media type', detail, { extra: { detectedType: detected } });

const badSignature = () => new AppError(403, 'bad_signature', 'Forbidden', 'This link is not valid');
const signedPayload = (id: string, expires: number, variant?: string) => (variant ? `${id}:${expires}:${variant}` : `${id}:${expires}`);

/** Transforms apply to images sharp reads; a fit means nothing without a size. */
function checkTransform(file: Pick<FileRow, 'mimeType'>, t: ImageTransform): void {
  if (!IMAGE_TYPES.has(file.mimeType)) throw new AppError(415, 'not_an_image', 'Unsupported media type', `Only images can be transformed (png, jpeg, gif, webp, avif); this file is ${file.mimeType}`);
  if (t.fit && !t.width && !t.height) throw ValidationError('`fit` needs `width` or `height`', 'invalid_transform');
}

function describeVariant(file: FileRow, t: ImageTransform) {
  const name = variantName(t, file.mimeType);
  const etag = `"${createHash('sha256').update(`${file.sha256}:${name}`).digest('hex').slice(0, 32)}"`;
  return { key: `${variantsFolder(file)}${name}`, name, mimeType: `image/${outputFormat(t, file.mimeType)}`, etag };
}

export interface FilesDeps {
  db: Db;
  /** `file.created` / `file.deleted`, which reach the owner's sockets on the `files` topic. */
  announce: Announce;
  /** Signs and checks the short-lived URLs of file contents. */
  signer: Signer;
  storage: Storage;
  settings: FileSettings;
  projects: Pick<Projects, 'exists'>;
  users: Pick<UsersService, 'exists'>;
  /** Thumbnails (queued after an image upload) and the removal of a deleted file's blobs. */
  jobs: Pick<Jobs, 'enqueue'>;
  images: Images;
  logger: Logger;
}

/**
 * Files: stored as they stream in (never whole in memory), typed by their
 * bytes, hashed, counted against the size limit and the owner's quota as they
 * arrive; refused before a byte is stored when their type is not allowed.
 * Every file belongs to one user; anyone else's is as missing as one that
 * does not exist.
 */
export function createFiles(d: FilesDeps) {
  const repo = createFilesRepository(d.db);
  const keyOf = (f: Pick<FileRow, 'userId' | 'id'>) => `files/${f.userId}/${f.id}/original`;

  async function quota(userId: string) {
    const [used, own] = await Promise.all([repo.used(userId), repo.quotaOf(userId)]);
    const limit = own ?? d.settings.quotaBytes;
    return { used, limit, remaining: Math.max(0, limit - used), custom: own !== undefined };
  }

  /** A stored blob's bytes and size (for Content-Length), or undefined when it is not there. */
  async function stream(key: string): Promise<{ body: Readable; size: number } | undefined> {
    const [body, stat] = await Promise.all([d.storage.get(key), d.storage.stat(key)]);
    if (body && stat) return { body, size: stat.size };
    body?.destroy();
    return undefined;
  }

  function signed(id: string, seconds: number, variant?: string): { path: string; expiresAt: Date } {
    const expires = Math.floor(Date.now() / 1000) + seconds;
    const signature = d.signer.sign(signedPayload(id, expires, variant));
    return { path: `/v1/files/${id}/content?${variant ? `${variant}&` : ''}expires=${expires}&signature=${encodeURIComponent(signature)}`, expiresAt: new Date(expires * 1000) };
  }

  async function require(userId: string, id: string): Promise<FileRow> {
    const file = await repo.get(userId, id);
    if (!file) throw NotFound('File', 'file_not_found');
    return file;
  }

  return {
    ...createExtraction({ storage: d.storage, exists: async (id) => (await repo.byId(id)) !== undefined }),
    quota,

    /** Admins: a user's quota and use; 404 for a user who does not exist. */
    async quotaOfUser(userId: string) {
      if (!(await d.users.exists(userId))) throw NotFound('User', 'user_not_found');
      return quota(userId);
    },

    /** Admins: a user's own quota in bytes, or null to go back to the deployment's default. */
    async setQuota(userId: string, bytes: number | null) {
      if (!(await d.users.exists(userId))) throw NotFound('User', 'user_not_found');
      await repo.setQuota(userId, bytes);
      return quota(userId);
    },

    /**
     * Refuses an upload whose declared length alone is over the quota, before a byte is read.
     * `exact`: the length is the file's own (a tus upload), not a multipart body's, so the size limit applies too and nothing is allowed for framing.
     * `projectId`: a project the file will belong to, which must be the user's.
     */
    async admit(userId: string, declaredBytes: number | undefined, opts: { exact?: boolean; projectId?: string } = {}): Promise<void> {
      if (opts.projectId && !(await d.projects.exists(userId, opts.projectId))) throw NotFound('Project', 'project_not_found');
      if (declaredBytes === undefined) return;
      if (opts.exact && declaredBytes > d.settings.maxBytes) throw tooLarge(d.settings.maxBytes);
      const q = await quota(userId);
      // The declared length includes multipart framing, so allow a little over the remaining room.
      if (declaredBytes > q.remaining + (opts.exact ? 0 : 64 * 1024)) throw overQuota(q.used, q.limit);
    },

    /**
     * Streams one file to storage and records it (the caller checked that a conversation it names is the user's).
     * `id`: the file's id when the caller chose it (a resumable upload's, so finishing it twice cannot make two files).
     */
    async upload(userId: string, input: { body: Readable; id?: string; filename?: string; projectId?: string; conversationId?: string }): Promise<FileRow> {
      if (input.projectId && !(await d.projects.exists(userId, input.projectId))) throw NotFound('Project', 'project_not_found');
      const q = await quota(userId);
      if (q.remaining === 0) throw overQuota(q.used, q.limit);
      const limit = Math.min(d.settings.maxBytes, q.remaining);
      const name = safeName(input.filename);

      const hash = createHash('sha256');
      let size = 0;
      const measured = new Transform({
        transform(chunk: Buffer, _encoding, done) {
          size += chunk.length;
          if (size > limit) return done(limit < d.settings.maxBytes ? overQuota(q.used, q.limit) : tooLarge(d.settings.maxBytes));
          hash.update(chunk);
          done(null, chunk);
        },
      });
      let failure: unknown;
      // The body failing (cut short, badly framed; perhaps before we got it) is the client's doing: a 400, not a server error.
      pipeline(input.body, measured, (err) => (failure ??= err && err === input.body.errored && !(err instanceof AppError) ? incomplete(err) : err));
      const { head, body } = await peek(measured, SAMPLE_BYTES).catch((err: unknown) => {
        throw failure ?? err;
      });
      const detected = detectType(head, await fileTypeFromBuffer(head), name);
      const refuse = (err: AppError) => {
        measured.destroy();
        input.body.resume();
        return err;
      };
      if (detected.mismatch) throw refuse(refusedType(detected.mimeType, `The file's bytes are ${detected.mimeType}, not the ${detected.mismatch} its name says`));
      if (!isAllowed(detected.mimeType, d.settings.allowedTypes)) throw refuse(refusedType(detected.mimeType, `Files of type ${detected.mimeType} are not accepted here`));
      const image = IMAGE_TYPES.has(detected.mimeType);
      // A decompression bomb is refused on what its header claims; one whose header is further in is refused when decoded.
      const declared = image ? await declaredSize(head) : undefined;
      if (declared && declared.width * declared.height > d.settings.maxImagePixels) throw refuse(imageTooLarge(declared.width, declared.height, d.settings.maxImagePixels));

      const file = { id: input.id ?? uuidv7(), userId };
      const key = keyOf(file);
      try {
        await d.storage.put(key, body, { contentType: detected.mimeType });
      } catch (err) {
        const cleanup = d.storage.delete(key).catch(() => {});
        // Storage down: its clean-up would wait out the same timeout; the caller hears at once, the bytes go when they can.
        if (!(err instanceof AppError && err.status === 503)) await cleanup;
        throw failure ?? err;
      }
      try {
        if (size === 0) throw ValidationError('The file is empty', 'empty_file');
        const values = { ...file, name, mimeType: detected.mimeType, size, sha256: hash.digest('hex'), storageKey: key, projectId: input.projectId ?? null, conversationId: input.conversationId ?? null };
        // One transaction: the quota checked again as the row is recorded (uploads side by side each saw the room
        // before the others took it: the user's uploads take turns here), and the row and its thumbnail job commit
        // together (no image is left waiting for a job never queued).
        const { row, used } = await inTransaction(d.db, async (tx) => {
          const txRepo = createFilesRepository(tx);
          await txRepo.lockUser(userId);
          const before = await txRepo.used(userId);
          if (before + size > q.limit) return { used: before };
          const inserted = await txRepo.insert({ ...values, thumbnail: image ? 'pending' : null });
          if (image) await d.jobs.enqueue(THUMBNAIL_QUEUE, { userId, fileId: file.id }, { ...thumbnailJobOptions({ userId, fileId: file.id }), tx });
          return { row: inserted, used: before };
        });
        if (!row) throw overQuota(used, q.limit);
        d.announce('file.created', { userId, fileId: row.id, name: row.name, mimeType: row.mimeType, size: row.size });
        return row;
      } catch (err) {
        await d.storage.delete(key).catch((e: unknown) => d.logger.error({ err: e, key }, 'could not remove the blob of a refused upload'));
        throw err;
      }
    },

    get: require,
    list: (userId: string, opts: FileFilter & { limit: number; cursor?: string }) => repo.list(userId, opts),

    async rename(userId: string, id: string, name: string): Promise<FileRow> {
      const file = await repo.rename(userId, id, safeName(name));
      if (!file) throw NotFound('File', 'file_not_found');
      return file;
    },

    /**
     * The row goes at once; the blobs (original, thumbnail, variants) follow in a queued job
     * committed with the deletion and retried until storage lets them go.
     */
    async delete(userId: string, id: string): Promise<void> {
      const file = await inTransaction(d.db, async (tx) => {
        const deleted = await createFilesRepository(tx).delete(userId, id);
        if (deleted) await d.jobs.enqueue(PURGE_QUEUE, { userId, fileId: deleted.id }, { ...purgeJobOptions({ userId, fileId: deleted.id }), tx });
        return deleted;
      });
      if (!file) throw NotFound('File', 'file_not_found');
      d.announce('file.deleted', { userId, fileId: file.id });
    },

    /**
     * A URL to the file's bytes that works without credentials until `expiresAt`
     * (an `<img src>`, a hand-off to another service): signed, bound to this file.
     */
    async signedUrl(userId: string, id: string, seconds: number, transform?: ImageTransform): Promise<{ path: string; expiresAt: Date }> {
      const file = await require(userId, id);
      const variant = transform && canonicalTransform(transform);
      if (variant) checkTransform(file, transform!);
      return signed(file.id, seconds, variant);
    },

    /**
     * The same for a file whose reader another module vouches for (a document's attachment, which the
     * document's readers may download though the file is its owner's); 404 once the file is gone.
     */
    async signedUrlFor(id: string, seconds: number): Promise<{ path: string; expiresAt: Date }> {
      if (!(await repo.byId(id))) throw NotFound('File', 'file_not_found');
      return signed(id, seconds);
    },

    /**
     * The file a signed URL names, while the signature holds and has not expired; 403 otherwise.
     * A link to a variant is signed over its parameters: it serves that variant and nothing else.
     */
    async bySignature(id: string, expires: number | undefined, signature: string, transform?: ImageTransform): Promise<FileRow> {
      // No expiry: no link this server made (every one is signed over its expiry), not one that has expired.
      if (expires === undefined) throw badSignature();
      if (expires < Date.now() / 1000) throw new AppError(403, 'url_expired', 'Forbidden', 'This link has expired; ask for a new one');
      if (!d.signer.verify(signature, signedPayload(id, expires, transform && canonicalTransform(transform)))) throw badSignature();
      const file = await repo.byId(id);
      if (!file) throw NotFound('File', 'file_not_found');
      return file;
    },

    /** Removes every blob of a user (their account is gone, and with it the rows). */
    async forgetUser(userId: string): Promise<void> {
      await d.storage.deletePrefix(`files/${userId}/`);
    },

    /**
     * Where the file's bytes can be read straight from the store for a few minutes, when downloads
     * are redirected (FILES_DOWNLOAD_REDIRECT on S3); undefined to serve them here.
     */
    async redirectUrl(file: FileRow, disposition: string): Promise<string | undefined> {
      if (!d.settings.downloadRedirect || !d.storage.presignGet) return undefined;
      return d.storage.presignGet(file.storageKey, { expiresIn: REDIRECT_SECONDS, contentType: contentType(file.mimeType), disposition });
    },

    /** The file's thumbnail (WebP) once made; 404 with why when there is none. */
    async thumbnail(userId: string, id: string): Promise<{ file: FileRow; body: Readable; size: number }> {
      const file = await require(userId, id);
      if (file.thumbnail !== 'ready') {
        const why = { pending: ['thumbnail_pending', 'The thumbnail is being made'], failed: ['thumbnail_failed', 'No thumbnail could be made of this image'] } as const;
        const [code, detail] = file.thumbnail ? why[file.thumbnail] : ['no_thumbnail', 'Only images have thumbnails'];
        throw new AppError(404, code, 'Not found', detail);
      }
      const stored = await stream(thumbnailKey(file));
      if (!stored) throw new AppError(404, 'thumbnail_missing', 'Not found', 'The thumbnail is recorded but not in storage');
      return { file, ...stored };
    },

    /**
     * A variant of an image (resized, converted), made on first request and kept in storage beside the
     * original (up to FILES_MAX_VARIANTS of a file; past them made for each request and not kept); later
     * requests read it back. 415 for a file that is not an image sharp reads; 503 `images_busy` when too many
     * wait to be made; `signal`: the client is gone, so its variant need not be made once its turn comes.
     */
    async variant(file: FileRow, transform: ImageTransform, signal?: AbortSignal): Promise<{ body: Readable; size: number; mimeType: string; etag: string; name: string }> {
      checkTransform(file, transform);
      const { key, name, mimeType, etag } = describeVariant(file, transform);
      const outcome = await d.images.variant(file, key, transform, signal);
      // Deleted while the variant was being made: the purge may be over, so remove what was just written.
      if (outcome.made && !(await repo.byId(file.id))) {
        if (outcome.kept) await d.storage.delete(key);
        throw NotFound('File', 'file_not_found');
      }
      if (outcome.made && !outcome.kept) return { body: Readable.from([outcome.bytes]), size: outcome.bytes.length, mimeType, etag, name };
      const stored = await stream(key);
      if (!stored) throw new AppError(503, 'variant_unavailable', 'Service unavailable', 'The variant was removed while being served; try again');
      return { ...stored, mimeType, etag, name };
    },

    /** A variant's ETag, known without making it (a conditional request is answered before any decoding); 415/400 as `variant`. */
    variantTag(file: FileRow, transform: ImageTransform): string {
      checkTransform(file, transform);
      return describeVariant(file, transform).etag;
    },

    /** The bytes of one of the user's files, all or one range. */
    async content(file: FileRow, range?: ByteRange): Promise<Readable> {
      const body = await d.storage.get(file.storageKey, range);
      if (!body) throw new AppError(410, 'file_content_missing', 'Gone', 'The file is recorded but its bytes are not in storage');
      return body;
    },
  };
}

export type Files = ReturnType<typeof createFiles>;
