import { AsyncLocalStorage } from 'node:async_hooks';
import { STATUS_CODES, type IncomingMessage, type ServerResponse } from 'node:http';
import { ERRORS, EVENTS, MemoryLocker, Server, TUS_RESUMABLE, type Locker, type Upload } from '@tus/server';
import type { FastifyReply, FastifyRequest, onRequestAsyncHookHandler } from 'fastify';
import type { Redis } from 'ioredis';
import { uuidv7 } from 'uuidv7';
import { AppError, NotFound, ValidationError } from '../../errors.ts';
import { principal } from '../../http/guards.ts';
import type { App } from '../../http/types.ts';
import type { Broadcast } from '../../platform/broadcast/broadcast.ts';
import type { Logger } from '../../platform/observability/logger.ts';
import type { Storage } from '../../platform/storage/storage.ts';
import type { ServiceMap } from '../module.ts';
import { toPublicFile, type Files } from './service.ts';
import type { FileSettings } from './settings.ts';
import { redisUploadLocker } from './upload-locker.ts';
import { StorageUploadStore } from './upload-store.ts';

export const UPLOADS_PATH = '/v1/files/uploads';
/** The finished file's id on the last PATCH's response (its body is the file). */
export const FILE_ID_HEADER = 'Parley-File-Id';
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Where unfinished resumable uploads live and how they are locked: shared by every instance that shares storage (and Redis). */
export interface ResumableUploads {
  store: StorageUploadStore;
  locker: Locker;
  /** Removes uploads left unfinished past their expiry (the files module's schedule). */
  expire(): Promise<number>;
}

export function createResumableUploads(deps: { storage: Storage; redis?: Redis; redisPrefix: string; broadcast: Broadcast; settings: FileSettings; logger: Logger }): ResumableUploads {
  const store = new StorageUploadStore(deps.storage, { expiryMs: deps.settings.uploadExpirySeconds * 1000 });
  // One process: tus's own in-memory lock. Several: a PATCH on one instance must hold off a PATCH of the same upload on another.
  const locker = deps.redis ? redisUploadLocker({ redis: deps.redis, prefix: deps.redisPrefix, broadcast: deps.broadcast, logger: deps.logger }) : new MemoryLocker();
  return { store, locker, expire: () => store.deleteExpired() };
}

/** What the tus hooks need to know of the Fastify request that handed them the raw one. */
interface RequestContext {
  userId: string;
  request: FastifyRequest;
  res: ServerResponse;
  /** The upload a POST made, once onUploadCreate let it be. */
  created?: string;
}

type TusRequest = Parameters<NonNullable<ConstructorParameters<typeof Server>[0]['onIncomingRequest']>>[0];

/**
 * A tus error (`{status_code, body}`) by what it means; unknown ones keep tus's wording under a generic code.
 * Compared by content, not identity: some are thrown as errors of their own (bytes past the length, cut as they stream).
 */
function tusCode(err: { status_code: number; body: string }): string {
  const is = (known: { status_code: number; body: string }) => err.status_code === known.status_code && err.body === known.body;
  if (is(ERRORS.FILE_NOT_FOUND)) return 'upload_not_found';
  if (is(ERRORS.INVALID_OFFSET)) return 'upload_offset_mismatch';
  if (is(ERRORS.FILE_NO_LONGER_EXISTS)) return 'upload_expired';
  if (is(ERRORS.ERR_SIZE_EXCEEDED) || is(ERRORS.ERR_MAX_SIZE_EXCEEDED)) return 'file_too_large';
  if (is(ERRORS.INVALID_LENGTH)) return 'invalid_upload_length';
  if (is(ERRORS.ERR_LOCK_TIMEOUT)) return 'upload_locked';
  return 'upload_failed';
}

/** The request tus is answering: what its own error responses name (`instance`, `requestId`), as every problem does. */
const answering = new AsyncLocalStorage<FastifyRequest>();

/**
 * tus's server, its error responses in Parley's problem+json: those of the
 * hooks and handlers (already problems, see onResponseError) and those it
 * writes before any hook runs (a missing Tus-Resumable, invalid headers).
 * Each response gets its status line's reason phrase (tus leaves it empty).
 */
class ProblemTusServer extends Server {
  override async write(context: Parameters<Server['write']>[0], headers: Headers, status: number, body = '') {
    if (status >= 400) {
      if (!body.startsWith('{')) {
        const code = status === 412 ? 'tus_version_required' : status === 400 ? 'invalid_tus_headers' : status === 404 ? 'not_found' : 'upload_failed';
        const request = answering.getStore();
        body = JSON.stringify({
          type: `https://parley.dev/problems/${code}`,
          title: STATUS_CODES[status] ?? 'Error',
          status,
          code,
          detail: body.trim(),
          ...(request && { instance: request.url.split('?')[0], requestId: request.id }),
        });
      }
      headers.set('content-type', 'application/problem+json; charset=utf-8');
    }
    const written = await super.write(context, headers, status, body);
    return new Response(written.body, { status: written.status, statusText: STATUS_CODES[written.status] ?? '', headers: written.headers });
  }
}

/**
 * Resumable uploads (the tus protocol, 1.0.0 with creation, termination and
 * expiration) under `/v1/files/uploads`: the same credentials and scope as
 * the other files routes, each upload its creator's alone. When the last
 * bytes arrive the upload goes through the same pipeline as a multipart one
 * (typed by its bytes, allow-listed, hashed, within the size limit and the
 * quota) and becomes a file; the last PATCH answers with it.
 */
export async function tusRoutes(
  app: App,
  ctx: { files: Files; uploads: ResumableUploads; conversations: Pick<ServiceMap['conversations'], 'get'>; onRequest: onRequestAsyncHookHandler; settings: FileSettings; allowedOrigins: string[] },
) {
  const { files, uploads, conversations } = ctx;
  const { store } = uploads;
  const contexts = new WeakMap<IncomingMessage, RequestContext>();
  const contextOf = (req: TusRequest): RequestContext => {
    const raw = (req as { runtime?: { node?: { req: IncomingMessage } } }).runtime?.node?.req;
    const found = raw && contexts.get(raw);
    if (!found) throw new Error('a tus request reached its hooks without passing through its route');
    return found;
  };
  const uploadNotFound = () => NotFound('Upload', 'upload_not_found');
  const idOf = (value: string | null | undefined, what: string) => {
    if (!value) return undefined;
    if (!UUID.test(value)) throw ValidationError(`The upload's ${what} is not an id`, 'invalid_metadata');
    return value;
  };

  /**
   * An upload's metadata, undefined when there is none. Read before tus takes the upload's lock, so a removal can
   * cut the read short (disk storage finds the info, then cannot open it): a failed read is asked once more, and
   * an upload removed meanwhile is then simply not there.
   */
  async function metadataOf(id: string): Promise<Record<string, string | null> | undefined> {
    const read = () =>
      store.metadataOf(id).catch((err: unknown) => {
        if (err === ERRORS.FILE_NOT_FOUND) return undefined;
        throw err;
      });
    try {
      return await read();
    } catch {
      return read();
    }
  }

  /**
   * Runs `fn` holding the upload's own lock, as tus holds it while it reads and writes the upload. tus lets go of it
   * before onUploadFinish: a PATCH waiting on the upload would otherwise read it as it is removed (no chunk left:
   * offset 0), write its own bytes and be answered with the file made of the first one's.
   */
  async function underUploadLock<T>(id: string, fn: () => Promise<T>): Promise<T> {
    const lock = uploads.locker.newLock(id);
    // Nothing to let go of early: the file is made, or the upload removed, in one go.
    await lock.lock(new AbortController().signal, () => {});
    try {
      return await fn();
    } finally {
      await lock.unlock();
    }
  }

  /**
   * The upload becomes a file, once: a retried last PATCH waits for the first to finish and gets the same file.
   * A refused file leaves nothing behind; a server-side failure keeps the bytes so an empty PATCH can finish again.
   * Called holding the upload's lock.
   */
  async function finish(userId: string, upload: Upload, opts: { removeNow: boolean; log: FastifyRequest['log'] }): Promise<{ status_code: number; headers: Record<string, string>; body: string }> {
    const { log } = opts;
    const meta = upload.metadata ?? {};
    try {
      // Finished already (a retried last PATCH): the same file again.
      const done = await files.get(userId, upload.id).catch(() => undefined);
      // The conversation may have gone since the upload began (the project is checked again by files.upload).
      if (!done && meta.conversationId) await conversations.get(userId, meta.conversationId);
      const row =
        done ??
        (await files.upload(userId, {
          id: upload.id,
          body: await store.read(upload.id),
          filename: meta.filename ?? meta.name ?? undefined,
          projectId: meta.projectId ?? undefined,
          conversationId: meta.conversationId ?? undefined,
        }));
      if (opts.removeNow) await store.remove(upload.id);
      return { status_code: opts.removeNow ? 200 : 201, headers: { 'Content-Type': 'application/json; charset=utf-8', [FILE_ID_HEADER]: row.id }, body: JSON.stringify(toPublicFile(row)) };
    } catch (err) {
      if (err instanceof AppError && err.status < 500 && err.code !== 'upload_incomplete') {
        await store.remove(upload.id).catch((e: unknown) => log.error({ err: e, uploadId: upload.id }, 'could not remove a refused upload (it expires)'));
      }
      throw err;
    }
  }

  const server = new ProblemTusServer({
    path: UPLOADS_PATH,
    datastore: store,
    locker: uploads.locker,
    // The Location a client follows is relative: right behind any proxy, whatever the host.
    relativeLocation: true,
    maxSize: ctx.settings.maxBytes,
    namingFunction: () => uuidv7(),
    exposedHeaders: [FILE_ID_HEADER],
    allowedOrigins: (origin) => ctx.allowedOrigins.includes(origin),
    allowedCredentials: true,

    async onIncomingRequest(req, id) {
      if (req.method === 'POST') return;
      const { userId } = contextOf(req);
      const metadata = await metadataOf(id);
      // Someone else's upload is as missing as one that never was.
      if (metadata?.userId !== userId) throw uploadNotFound();
    },

    async onUploadCreate(req, upload) {
      const { userId } = contextOf(req);
      if (upload.sizeIsDeferred) throw ValidationError('Declare the file\'s length in Upload-Length', 'upload_length_required');
      const meta = upload.metadata ?? {};
      const projectId = idOf(meta.projectId, 'projectId');
      const conversationId = idOf(meta.conversationId, 'conversationId');
      await files.admit(userId, upload.size, { exact: true, projectId });
      if (conversationId) await conversations.get(userId, conversationId);
      // A creation refused after this (its bytes past the length, say) leaves no upload behind: see onResponseError.
      contextOf(req).created = upload.id;
      // The owner is ours to say, whatever the client sent.
      return { metadata: { ...meta, userId } };
    },

    async onUploadFinish(req, upload) {
      const { userId, request } = contextOf(req);
      // A creation that carried all the bytes: tus reads the upload again after this hook, so it goes once the response is made (below).
      return underUploadLock(upload.id, () => finish(userId, upload, { removeNow: req.method !== 'POST', log: request.log }));
    },

    async onResponseError(req, err) {
      const context = contextOf(req);
      const { request } = context;
      let problem: { status: number; title: string; code: string; detail?: string; [extra: string]: unknown };
      if (err instanceof AppError) {
        problem = { status: err.status, title: err.title, code: err.code, detail: err.message, ...err.extra };
        // Retry-After and the like: tus's response keeps what is set on the raw response.
        for (const [name, value] of Object.entries(err.headers)) context.res.setHeader(name, value);
      }
      else if (err === ERRORS.UNSUPPORTED_CREATION_DEFER_LENGTH_EXTENSION) {
        // tus answers 501 (an extension it lacks), but the client sent what this server documents it refuses.
        problem =
          req.method === 'POST'
            ? { status: 400, title: 'Upload refused', code: 'upload_length_required', detail: 'Upload-Length is required: deferred lengths are not accepted' }
            : { status: 400, title: 'Upload refused', code: 'invalid_upload_length', detail: 'Upload-Length is set when the upload is created, not on a PATCH' };
      } else if ('status_code' in err && tusCode(err) === 'upload_locked') {
        // Another request held the upload past tus's wait (a last PATCH still making the file, say): tus calls that a 500,
        // but nothing failed; 423 is what tus clients retry on.
        context.res.setHeader('retry-after', '1');
        problem = { status: 423, title: 'Locked', code: 'upload_locked', detail: 'Another request is writing this upload; try again shortly', retryAfter: 1 };
      } else if ('status_code' in err && err.status_code === 501) {
        problem = { status: 501, title: 'Not implemented', code: 'unsupported_tus_extension', detail: err.body.trim() };
      } else if ('status_code' in err && err.status_code < 500) {
        problem = { status: err.status_code, title: err.status_code === 404 ? 'Not found' : 'Upload refused', code: tusCode(err), detail: err.body.trim() };
      } else {
        request.log.error({ err }, 'resumable upload failed');
        problem = { status: 500, title: 'Internal Server Error', code: 'internal_error', detail: `Something went wrong on our side. Quote request id ${request.id} when reporting it.` };
      }
      // A creation refused once made (creation-with-upload): its client gets no Location, so nobody could resume or delete it.
      if (req.method === 'POST' && context.created && problem.status < 500) {
        const id = context.created;
        await store.remove(id).catch((e: unknown) => request.log.error({ err: e, uploadId: id }, 'could not remove a refused upload (it expires)'));
      }
      const body = { type: `https://parley.dev/problems/${problem.code}`, ...problem, instance: request.url.split('?')[0], requestId: request.id };
      return { status_code: problem.status, body: JSON.stringify(body) };
    },
  });
  server.on(EVENTS.POST_FINISH, (req, _res, upload) => {
    if (req.method !== 'POST') return;
    underUploadLock(upload.id, () => store.remove(upload.id)).catch((err: unknown) => contextOf(req).request.log.error({ err, uploadId: upload.id }, 'could not remove a finished upload'));
  });

  const handle = async (request: FastifyRequest, reply: FastifyReply) => {
    // A version this server does not speak is 412 with the versions it does (tus 1.0.0, "Tus-Resumable"); the library answers 400.
    const version = request.headers['tus-resumable'];
    if (request.method !== 'OPTIONS' && version !== undefined && version !== TUS_RESUMABLE) {
      reply.header('tus-version', TUS_RESUMABLE).header('tus-resumable', TUS_RESUMABLE);
      throw new AppError(412, 'tus_version_unsupported', 'Precondition failed', `This server speaks tus ${TUS_RESUMABLE}, not ${String(version).slice(0, 20)}`);
    }
    // tus answers a PATCH without its offset 403 and reads one that is not a number as a mismatch (409): both are a malformed request, 400 as tusd says.
    const offset = request.headers['upload-offset'];
    if (request.method === 'PATCH' && !(typeof offset === 'string' && /^\d{1,15}$/.test(offset.trim()))) {
      throw ValidationError(offset === undefined ? 'A PATCH needs an Upload-Offset header: the bytes the server has (HEAD tells)' : 'Upload-Offset must be a whole number of bytes', 'invalid_upload_offset');
    }
    // tus answers any other type 403; the protocol asks for 415.
    if (request.method === 'PATCH' && request.headers['content-type']?.split(';')[0]!.trim().toLowerCase() !== 'application/offset+octet-stream') {
      throw new AppError(415, 'unsupported_media_type', 'Unsupported media type', 'A PATCH sends its bytes as Content-Type: application/offset+octet-stream');
    }
    // OPTIONS (discovery, CORS preflight) needs no one signed in.
    contexts.set(request.raw, { userId: request.method === 'OPTIONS' ? '' : principal(request).userId, request, res: reply.raw });
    reply.hijack();
    // What hooks and guards set on the reply (request id, rate limits) goes out with tus's response, as on every other.
    for (const [name, value] of Object.entries({ ...reply.getHeaders(), 'x-request-id': request.id })) if (value !== undefined) reply.raw.setHeader(name, value);
    await answering.run(request, () => server.handle(request.raw, reply.raw));
  };

  await app.register(async (scope: App) => {
    // tus streams the body itself: Fastify leaves it unread.
    scope.addContentTypeParser('application/offset+octet-stream', (_request, _payload, done) => done(null));
    const tags = ['files'];
    const description =
      'The tus 1.0.0 protocol (creation, creation-with-upload, termination, expiration); see docs/api.md, "Resumable uploads (tus)". ' +
      'The last PATCH answers 200 with the file and a `Parley-File-Id` header.';
    scope.route({ method: 'POST', url: '/files/uploads', schema: { tags, summary: 'Start a resumable upload (tus)', description }, onRequest: ctx.onRequest, handler: handle });
    scope.route({ method: ['HEAD', 'PATCH', 'DELETE'], url: '/files/uploads/:id', schema: { tags, summary: 'Resume, append to or cancel a resumable upload (tus)', description }, onRequest: ctx.onRequest, handler: handle });
    scope.route({ method: 'OPTIONS', url: '/files/uploads', schema: { security: [], tags, summary: 'What the tus endpoint supports (no credentials needed)' }, handler: handle });
    scope.route({ method: 'OPTIONS', url: '/files/uploads/:id', schema: { security: [], tags, summary: 'What the tus endpoint supports (no credentials needed)' }, handler: handle });
  });
}
