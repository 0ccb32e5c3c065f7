import { DeleteObjectCommand, DeleteObjectsCommand, GetObjectCommand, HeadBucketCommand, HeadObjectCommand, ListObjectsV2Command, S3Client, S3ServiceException } from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { pipeline, Transform, type Readable } from 'node:stream';
import { AppError, DependencyUnavailable } from '../../errors.ts';
import { isConnectionError } from '../net/connection-errors.ts';
import { checkKey, type Storage } from './storage.ts';

export interface S3Settings {
  /** Unset for AWS itself; the service's URL for MinIO, R2 and the like. */
  endpoint?: string;
  bucket: string;
  region: string;
  accessKeyId?: string;
  secretAccessKey?: string;
  /** `host/bucket/key` addressing, which MinIO and most self-hosted services need. */
  forcePathStyle: boolean;
  /** Optional prefix of every key, so one bucket can hold several deployments. */
  prefix?: string;
  /** The service's URL as browsers reach it, for presigned URLs, when it differs from `endpoint` (compose: `minio:9000` inside, `localhost:9000` outside). */
  publicEndpoint?: string;
  /** The longest a request may wait for the service's answer (its headers); 30 s when not given. */
  requestTimeoutMs?: number;
}

/** Multipart parts (S3's minimum is 5 MiB): memory per upload is about PART_BYTES × QUEUE, whatever the file's size. */
const PART_BYTES = 8 * 1024 * 1024;
const QUEUE = 2;

const notFound = (err: unknown) =>
  err instanceof S3ServiceException && (err.name === 'NotFound' || err.name === 'NoSuchKey' || err.$metadata.httpStatusCode === 404);

/**
 * How long the service may take: to accept a connection, and to answer a request (its headers; a body then
 * streams for as long as it takes). Past them a request fails, instead of holding the caller for as long as
 * the kernel keeps a silent socket.
 */
const CONNECT_TIMEOUT_MS = 5_000;
const REQUEST_TIMEOUT_MS = 30_000;
/** Seconds a client is asked to wait when the storage service cannot be reached. */
const RETRY_AFTER_SECONDS = 5;

/** The store refusing the deployment itself (a bucket that is not there, credentials it does not take): no request of a caller's will pass. */
const MISCONFIGURED = new Set(['NoSuchBucket', 'InvalidAccessKeyId', 'SignatureDoesNotMatch', 'AccessDenied']);

/**
 * The service down, silent or overloaded (5xx), or refusing the deployment's bucket or credentials, is the
 * dependency's failure: 503 dependency_unavailable "Storage is unavailable" (and `/ready` says storage down).
 */
function unavailable(err: unknown): unknown {
  if (err instanceof AppError) return err;
  const e = err as { name?: string; $metadata?: { httpStatusCode?: number } };
  const down = e.name === 'TimeoutError' || isConnectionError(err) || (e.$metadata?.httpStatusCode ?? 0) >= 500 || MISCONFIGURED.has(e.name ?? '');
  return down ? DependencyUnavailable('Storage', RETRY_AFTER_SECONDS, err) : err;
}

/**
 * Objects in an S3-compatible bucket through the AWS SDK v3. Uploads stream
 * as multipart (lib-storage), so a file of any size holds a few parts in
 * memory at most; an upload that fails is aborted and leaves no object.
 */
export function s3Storage(settings: S3Settings): Storage {
  const clientFor = (endpoint: string | undefined) => new S3Client({
    endpoint,
    region: settings.region,
    forcePathStyle: settings.forcePathStyle,
    credentials: settings.accessKeyId && settings.secretAccessKey ? { accessKeyId: settings.accessKeyId, secretAccessKey: settings.secretAccessKey } : undefined,
    // Checksums only where S3 requires them: many S3-compatible services refuse the SDK's default trailing checksums on streamed bodies.
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    requestHandler: { connectionTimeout: CONNECT_TIMEOUT_MS, requestTimeout: settings.requestTimeoutMs ?? REQUEST_TIMEOUT_MS, throwOnRequestTimeout: true },
  });
  const client = clientFor(settings.endpoint);
  // Presigning is offline (no request): a client of the public endpoint only signs.
  const signer = settings.publicEndpoint && settings.publicEndpoint !== settings.endpoint ? clientFor(settings.publicEndpoint) : client;
  const Bucket = settings.bucket;
  const full = (key: string) => (settings.prefix ? `${settings.prefix.replace(/\/+$/, '')}/${key}` : key);

  return {
    kind: 's3',

    async put(key, body, opts = {}) {
      checkKey(key);
      let size = 0;
      const counted = new Transform({
        transform(chunk: Buffer, _encoding, done) {
          size += chunk.length;
          done(null, chunk);
        },
      });
      // The body's error reaches the upload through `counted`, which then aborts it.
      pipeline(body, counted, () => {});
      const upload = new Upload({ client, params: { Bucket, Key: full(key), Body: counted, ContentType: opts.contentType }, partSize: PART_BYTES, queueSize: QUEUE, leavePartsOnError: false });
      await upload.done().catch((err: unknown) => {
        throw unavailable(err);
      });
      return { size };
    },

    async get(key, range) {
      checkKey(key);
      try {
        const res = await client.send(new GetObjectCommand({ Bucket, Key: full(key), Range: range ? `bytes=${range.start}-${range.end}` : undefined }));
        return res.Body as Readable;
      } catch (err) {
        if (notFound(err)) return undefined;
        throw unavailable(err);
      }
    },

    async stat(key) {
      checkKey(key);
      try {
        const res = await client.send(new HeadObjectCommand({ Bucket, Key: full(key) }));
        return { key, size: res.ContentLength ?? 0, contentType: res.ContentType };
      } catch (err) {
        if (notFound(err)) return undefined;
        throw unavailable(err);
      }
    },

    async delete(key) {
      checkKey(key);
      await client.send(new DeleteObjectCommand({ Bucket, Key: full(key) }));
    },

    async keys(prefix) {
      checkKey(prefix, { prefix: true });
      const found: string[] = [];
      const strip = full('').length;
      let token: string | undefined;
      do {
        const page = await client.send(new ListObjectsV2Command({ Bucket, Prefix: full(prefix), ContinuationToken: token }));
        for (const o of page.Contents ?? []) if (o.Key) found.push(o.Key.slice(settings.prefix ? strip : 0));
        token = page.IsTruncated ? page.NextContinuationToken : undefined;
      } while (token);
      return found;
    },

    async deletePrefix(prefix) {
      checkKey(prefix, { prefix: true });
      let deleted = 0;
      let token: string | undefined;
      do {
        const page = await client.send(new ListObjectsV2Command({ Bucket, Prefix: full(prefix), ContinuationToken: token }));
        const keys = (page.Contents ?? []).flatMap((o) => (o.Key ? [{ Key: o.Key }] : []));
        if (keys.length) {
          await client.send(new DeleteObjectsCommand({ Bucket, Delete: { Objects: keys, Quiet: true } }));
          deleted += keys.length;
        }
        token = page.IsTruncated ? page.NextContinuationToken : undefined;
      } while (token);
      return deleted;
    },

    async presignGet(key, opts) {
      checkKey(key);
      const command = new GetObjectCommand({ Bucket, Key: full(key), ResponseContentType: opts.contentType, ResponseContentDisposition: opts.disposition });
      return getSignedUrl(signer, command, { expiresIn: opts.expiresIn });
    },

    async ping() {
      // A readiness probe answers within a couple of seconds, whatever the SDK's retries would wait.
      await client.send(new HeadBucketCommand({ Bucket }), { abortSignal: AbortSignal.timeout(2_000) });
    },

    async close() {
      client.destroy();
      if (signer !== client) signer.destroy();
    },
  };
}
