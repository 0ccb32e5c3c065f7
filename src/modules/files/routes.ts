import fastifyMultipart from '@fastify/multipart';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { AppError, ValidationError } from '../../errors.ts';
import { principal } from '../../http/guards.ts';
import { page, toPage } from '../../http/pagination.ts';
import { problemSchema } from '../../http/problem.ts';
import type { App } from '../../http/types.ts';
import type { ByteRange } from '../../platform/storage/storage.ts';
import type { RouteContext } from '../module.ts';
import { contentQuery, fileParams, fileSchema, filesQuery, quotaSchema, renameBody, setQuotaBody, signedUrlBody, signedUrlSchema, userParams } from './contracts.ts';
import { MAX_TRANSFORM_PX, THUMBNAIL_PX, type ImageTransform } from './images.ts';
import type { FileRow } from './schema.ts';
import { toPublicFile } from './service.ts';
import { contentType } from './sniff.ts';
import { tusRoutes } from './tus.ts';

const problems = { 400: problemSchema, 401: problemSchema, 403: problemSchema, 404: problemSchema };
const tags = ['files'];

/** Types a browser may show in place; everything else is a download (HTML and SVG are never accepted at all). */
const INLINE = /^(image\/(png|jpeg|gif|webp|avif)|application\/pdf|text\/plain|text\/csv|text\/markdown|application\/json|audio\/.+)$/;

/**
 * `Content-Disposition` with the name both as ASCII and, for everything else, RFC 8187 UTF-8: every byte
 * outside its attr-char percent-encoded (encodeURIComponent leaves `'()*!`, with which browsers drop the
 * UTF-8 name for the ASCII one).
 */
function disposition(file: FileRow): string {
  const kind = INLINE.test(file.mimeType) ? 'inline' : 'attachment';
  const ascii = file.name.replace(/[^\x20-\x7e]|["\\]/g, '_');
  const utf8 = encodeURIComponent(file.name).replace(/['()*!]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
  return `${kind}; filename="${ascii}"; filename*=UTF-8''${utf8}`;
}


/** One `bytes=a-b`, `bytes=a-` or `bytes=-n` range within `size`; undefined for none; 416 for one that cannot be served. */
function rangeOf(header: string | undefined, size: number): ByteRange | undefined {
  if (!header) return undefined;
  const m = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  const unsatisfiable = () => new AppError(416, 'range_not_satisfiable', 'Range not satisfiable', `The file holds ${size} bytes`, { headers: { 'content-range': `bytes */${size}` } });
  // Several ranges, or another unit: the whole file, as RFC 9110 allows.
  if (!m || (!m[1] && !m[2])) return undefined;
  if (!m[1]) {
    const n = Number(m[2]);
    if (n === 0 || size === 0) throw unsatisfiable();
    return { start: Math.max(0, size - n), end: size - 1 };
  }
  const start = Number(m[1]);
  // A last byte before the first is no range at all: ignored, as RFC 9110 asks of an invalid one.
  if (m[2] && Number(m[2]) < start) return undefined;
  const end = m[2] ? Math.min(Number(m[2]), size - 1) : size - 1;
  if (start >= size) throw unsatisfiable();
  return { start, end };
}

/** Headers every byte served from a file carries: never sniffed into something active, never run as a page. */
const SAFETY = { 'x-content-type-options': 'nosniff', 'content-security-policy': "default-src 'none'; sandbox" };

/** If-None-Match against an ETag, by weak comparison (RFC 9110): `W/"x"` and `"x"` are the same tag here. */
const opaque = (tag: string) => tag.trim().replace(/^W\//, '');
const matches = (inm: string | undefined, etag: string) => !!inm && inm.split(',').some((t) => t.trim() === '*' || opaque(t) === opaque(etag));

/** The transform a query asks for, or undefined for the original. */
function transformOf(q: ImageTransform): ImageTransform | undefined {
  const t: ImageTransform = { width: q.width, height: q.height, fit: q.fit, format: q.format };
  return Object.values(t).some((v) => v !== undefined) ? t : undefined;
}

/** A variant's or thumbnail's name: the original's, with the variant's size and extension; always inline (an image sharp wrote). */
function variantDisposition(file: FileRow, name: string): string {
  const base = file.name.replace(/\.[^.]*$/, '');
  return disposition({ ...file, mimeType: 'image/webp', name: `${base}-${name}` });
}

/**
 * A multipart body the parser could not read: the client's fault, a 400 (the plugin's own limits keep their status);
 * a body that is not multipart at all (JSON, none) is the 415 any other route gives a type it does not take, not the plugin's 406.
 */
const malformed = (err: unknown) => {
  if ((err as { code?: string }).code === 'FST_INVALID_MULTIPART_CONTENT_TYPE') {
    return new AppError(415, 'unsupported_media_type', 'Unsupported media type', 'Send the file as multipart/form-data');
  }
  return err instanceof AppError || (err as { statusCode?: number }).statusCode
    ? err
    : ValidationError(`The multipart body could not be read: ${(err as Error).message}`, 'malformed_multipart');
};

/**
 * What the client still sends of a multipart body once it is answered (a file refused as it arrives, or before a byte
 * of it was read) is read and dropped, as Node drops a body nobody began to read: left paused, it stalls the
 * connection, and the client's next request on it waits forever. Past `limit` more bytes, the connection is closed.
 */
function discardRest(request: FastifyRequest, limit: number): void {
  const raw = request.raw;
  if (raw.complete || raw.destroyed) return;
  raw.unpipe();
  let dropped = 0;
  raw.on('data', (chunk: Buffer) => {
    dropped += chunk.length;
    if (dropped > limit) raw.destroy();
  });
  raw.resume();
}

/** Aborts when the client goes away before its response is complete (work it waits for need not be done). */
function clientGone(reply: FastifyReply): AbortSignal {
  const gone = new AbortController();
  const res = reply.raw;
  if (res.destroyed) gone.abort();
  else res.once('close', () => res.writableFinished || gone.abort());
  return gone.signal;
}

const uuid = z.uuid();

/** An id field of the form (`projectId`, `conversationId`): absent, or a UUID (400 `validation_failed` otherwise). */
const idField = (fields: Record<string, unknown>, name: string): string | undefined => {
  const f = fields[name] as { value?: unknown } | undefined;
  const value = typeof f?.value === 'string' && f.value ? f.value : undefined;
  if (value !== undefined && !uuid.safeParse(value).success) {
    throw ValidationError(`Invalid form: ${name} is not an id`, 'validation_failed', { errors: [{ path: `/${name}`, message: 'must be a UUID' }] });
  }
  return value;
};

/** Uploading, listing, renaming, deleting and downloading one's own files. API keys need the `files` scope. */
export async function filesRoutes(app: App, { services, guards, config }: RouteContext<'files' | 'resumableUploads' | 'conversations'>) {
  const { files, conversations } = services;
  const onRequest = guards.user({ scope: 'files' });
  const me = (request: FastifyRequest) => principal(request).userId;

  await tusRoutes(app, { files, uploads: services.resumableUploads, conversations, onRequest, settings: config.files, allowedOrigins: config.allowedOrigins });

  await app.register(async (scope: App) => {
    // Multipart only here: streamed, one file per request, the size limit applied while it arrives.
    await scope.register(fastifyMultipart, { limits: { files: 1, fields: 4, fieldSize: 1024, parts: 6, fileSize: config.files.maxBytes + 1 } });
    scope.addHook('onResponse', async (request) => discardRest(request, config.files.maxBytes));

    scope.post('/files', {
      schema: {
        tags,
        summary: 'Upload a file',
        description:
          'multipart/form-data with the file in a part named `file`; optional `projectId` and `conversationId` fields must come before it. ' +
          'The type is sniffed from the bytes (415 `unsupported_file_type` with `detectedType` when it is not accepted or contradicts the name), ' +
          'the size is limited while streaming (413 `file_too_large`), and so is your quota (413 `quota_exceeded` with `used` and `limit`).',
        consumes: ['multipart/form-data'],
        response: { 201: fileSchema, 413: problemSchema, 415: problemSchema, ...problems },
      },
      onRequest,
      handler: async (request, reply) => {
        const userId = me(request);
        const declared = Number(request.headers['content-length']);
        await files.admit(userId, Number.isFinite(declared) && declared > 0 ? declared : undefined);
        const part = await request.file().catch((err: unknown) => {
          throw malformed(err);
        });
        if (!part || part.fieldname !== 'file') {
          part?.file.resume();
          throw ValidationError('Send the file in a multipart part named "file"', 'file_missing');
        }
        let conversationId: string | undefined;
        let projectId: string | undefined;
        try {
          conversationId = idField(part.fields, 'conversationId');
          projectId = idField(part.fields, 'projectId');
        } catch (err) {
          part.file.resume();
          throw err;
        }
        if (conversationId) {
          await conversations.get(userId, conversationId).catch((err: unknown) => {
            part.file.resume();
            throw err;
          });
        }
        const row = await files.upload(userId, { body: part.file, filename: part.filename, projectId, conversationId });
        return reply.status(201).send(toPublicFile(row));
      },
    });
  });

  app.get('/files', {
    schema: { tags, summary: 'Your files, newest first', querystring: filesQuery, response: { 200: page(fileSchema), ...problems } },
    onRequest,
    handler: async (request) => {
      const { limit, ...filter } = request.query;
      return toPage(await files.list(me(request), { ...filter, limit: limit + 1 }), limit, toPublicFile);
    },
  });

  app.get('/files/quota', {
    schema: { tags, summary: 'How much of your file storage quota is used', response: { 200: quotaSchema, ...problems } },
    onRequest,
    handler: async (request) => files.quota(me(request)),
  });

  app.get('/admin/files/quota/:userId', {
    schema: { tags: ['admin'], summary: "A user's file storage quota and use", params: userParams, response: { 200: quotaSchema, ...problems } },
    onRequest: guards.admin(),
    handler: async (request) => files.quotaOfUser(request.params.userId),
  });

  app.put('/admin/files/quota/:userId', {
    schema: { tags: ['admin'], summary: "Set a user's file storage quota", params: userParams, body: setQuotaBody, response: { 200: quotaSchema, ...problems } },
    onRequest: guards.admin(),
    handler: async (request) => files.setQuota(request.params.userId, request.body.bytes),
  });

  app.get('/files/:id', {
    schema: { tags, summary: 'One of your files', params: fileParams, response: { 200: fileSchema, ...problems } },
    onRequest,
    handler: async (request) => toPublicFile(await files.get(me(request), request.params.id)),
  });

  app.patch('/files/:id', {
    schema: { tags, summary: 'Rename a file', description: 'The name is for display; paths and control characters are dropped.', params: fileParams, body: renameBody, response: { 200: fileSchema, ...problems } },
    onRequest,
    handler: async (request) => toPublicFile(await files.rename(me(request), request.params.id, request.body.name)),
  });

  app.delete('/files/:id', {
    schema: { tags, summary: 'Delete a file and its bytes', params: fileParams, response: { 204: z.null(), ...problems } },
    onRequest,
    handler: async (request, reply) => {
      await files.delete(me(request), request.params.id);
      return reply.status(204).send(null);
    },
  });

  app.post('/files/:id/url', {
    schema: {
      tags,
      summary: "A short-lived link to a file's bytes",
      description:
        'Works without credentials until it expires (for `<img src>` or a hand-off); bound to this file, and with `width`, `height`, `fit` or `format` to that variant ' +
        '(changing any of them on the link makes it 403). Anyone holding it can read the file meanwhile.',
      params: fileParams,
      body: signedUrlBody,
      response: { 200: signedUrlSchema, ...problems },
    },
    onRequest,
    handler: async (request) => {
      const { expiresIn, ...transform } = request.body;
      const { path, expiresAt } = await files.signedUrl(me(request), request.params.id, expiresIn, transformOf(transform));
      return { url: `${config.publicUrl}${path}`, expiresAt: expiresAt.toISOString() };
    },
  });

  app.get('/files/:id/thumbnail', {
    schema: {
      tags,
      summary: "An image's thumbnail",
      description: `WebP, its longest side at most ${THUMBNAIL_PX} px, aspect kept; made by a background job after upload (the file's \`thumbnail\` says when it is \`ready\`). 404 \`thumbnail_pending\`, \`thumbnail_failed\` or \`no_thumbnail\` otherwise.`,
      params: fileParams,
      response: problems,
    },
    onRequest,
    handler: async (request, reply: FastifyReply) => {
      const { file, body, size } = await files.thumbnail(me(request), request.params.id);
      const etag = `"t-${file.sha256.slice(0, 32)}"`;
      reply.headers({ etag, 'cache-control': 'private, max-age=0, must-revalidate', 'content-disposition': variantDisposition(file, 'thumbnail.webp'), ...SAFETY });
      if (matches(request.headers['if-none-match'], etag)) {
        body.destroy();
        return reply.status(304).send();
      }
      reply.type('image/webp').header('content-length', size);
      return reply.send(body);
    },
  });

  app.get('/files/:id/content', {
    schema: {
      tags,
      summary: "A file's bytes",
      description:
        'For its owner, or for anyone with a signed link (`expires` and `signature`, from `POST /v1/files/{id}/url`). ' +
        'Supports `Range` (one range; 206), `If-None-Match` with the `ETag` (304), and names the file in `Content-Disposition`. Served with `nosniff` and a sandboxing CSP. ' +
        'With `FILES_DOWNLOAD_REDIRECT` on S3, a 302 to a presigned URL of the store (valid 5 minutes) instead of the bytes. ' +
        `Images (png, jpeg, gif, webp, avif) take \`width\`, \`height\` (1 to ${MAX_TRANSFORM_PX}), \`fit\` and \`format\`: the variant is made once, kept beside the original and served ` +
        `with its own ETag (no ranges; past ${config.files.maxVariants} variants of a file, a new one is made for each request and not kept); 415 \`not_an_image\` for other files, ` +
        '422 `image_too_large` or `image_unreadable` for an image that cannot be decoded, 503 `images_busy` (with Retry-After) when too many images wait to be made.',
      params: fileParams,
      querystring: contentQuery,
      response: { 415: problemSchema, 416: problemSchema, 422: problemSchema, 503: problemSchema, ...problems },
    },
    // A signed link stands in for credentials; without one, the usual check.
    onRequest: async (request, reply) => {
      if (!(request.query as { signature?: string }).signature) await onRequest.call(app, request, reply);
    },
    handler: async (request, reply: FastifyReply) => {
      const { expires, signature, ...query } = request.query;
      const transform = transformOf(query);
      const file = signature ? await files.bySignature(request.params.id, expires, signature, transform) : await files.get(me(request), request.params.id);
      if (transform) {
        const tag = files.variantTag(file, transform);
        reply.headers({ etag: tag, 'cache-control': 'private, max-age=0, must-revalidate', ...SAFETY });
        if (matches(request.headers['if-none-match'], tag)) return reply.status(304).send();
        const variant = await files.variant(file, transform, clientGone(reply));
        reply.type(variant.mimeType).headers({ 'content-length': variant.size, 'content-disposition': variantDisposition(file, variant.name) });
        return reply.send(variant.body);
      }
      const etag = `"${file.sha256}"`;
      reply.headers({
        etag,
        'accept-ranges': 'bytes',
        'cache-control': 'private, max-age=0, must-revalidate',
        'content-disposition': disposition(file),
        ...SAFETY,
      });
      if (matches(request.headers['if-none-match'], etag)) return reply.status(304).send();
      const redirect = await files.redirectUrl(file, disposition(file));
      // The client sends its Range again to the store, which serves it.
      if (redirect) return reply.header('cache-control', 'private, no-store').redirect(redirect, 302);
      const range = rangeOf(request.headers.range, file.size);
      const body = await files.content(file, range);
      reply.type(contentType(file.mimeType));
      if (range) {
        reply.status(206).header('content-range', `bytes ${range.start}-${range.end}/${file.size}`).header('content-length', range.end - range.start + 1);
      } else reply.header('content-length', file.size);
      return reply.send(body);
    },
  });
}
