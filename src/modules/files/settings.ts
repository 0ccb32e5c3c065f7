import { z } from 'zod';
import { ConfigError } from '../../errors.ts';
import { envBool, envInt, envSeconds } from '../../platform/config/env.ts';

export interface FileSettings {
  /** Largest file accepted, enforced while the bytes stream in. */
  maxBytes: number;
  /** Bytes one user may store in files (every file counted), unless an admin sets otherwise. */
  quotaBytes: number;
  /** MIME types accepted, exact (`application/pdf`) or by family (`image/*`). */
  allowedTypes: string[];
  /** Downloads answered with a redirect to a short-lived presigned S3 URL, so the bytes do not pass through Parley (S3 only). */
  downloadRedirect: boolean;
  /** How long a resumable (tus) upload may stay unfinished before it is removed, in seconds. */
  uploadExpirySeconds: number;
  /**
   * Most pixels (width × height) an image may declare: refused at upload when its header says more,
   * and never decoded beyond it by thumbnails and transforms (decompression bombs).
   */
  maxImagePixels: number;
  /**
   * Variants of one image kept in storage (`FILES_MAX_VARIANTS`): past them a new variant is made and served
   * but not kept, so one small image cannot fill the store with every width × height × fit × format.
   */
  maxVariants: number;
}

/** Images, PDF, text, Markdown, CSV, JSON, Office documents, audio; never HTML or SVG (active content). */
export const DEFAULT_ALLOWED_TYPES = [
  'image/png',
  'image/jpeg',
  'image/gif',
  'image/webp',
  'image/avif',
  'image/heic',
  'application/pdf',
  'text/plain',
  'text/markdown',
  'text/csv',
  'application/json',
  'application/vnd.openxmlformats-officedocument.wordprocessingml.document',
  'application/vnd.openxmlformats-officedocument.spreadsheetml.sheet',
  'application/vnd.openxmlformats-officedocument.presentationml.presentation',
  'application/vnd.oasis.opendocument.text',
  'application/vnd.oasis.opendocument.spreadsheet',
  'application/vnd.oasis.opendocument.presentation',
  'audio/*',
];

const bytes = envInt(1, Number.MAX_SAFE_INTEGER);
const mimeList = z
  .string()
  .transform((v) => v.split(',').map((s) => s.trim().toLowerCase()).filter(Boolean))
  .pipe(z.array(z.string().regex(/^[a-z0-9.+-]+\/(\*|[a-z0-9.+-]+)$/, 'a MIME type (type/subtype or type/*)')).min(1));

export const filesEnv = {
  FILES_MAX_BYTES: bytes.default(50 * 1024 * 1024),
  FILES_QUOTA_BYTES: bytes.default(1024 * 1024 * 1024),
  FILES_ALLOWED_TYPES: mimeList.optional(),
  FILES_DOWNLOAD_REDIRECT: envBool.default(false),
  FILES_UPLOAD_EXPIRY_SECONDS: envSeconds(1).default(24 * 60 * 60),
  // 50 megapixels: any phone or camera photo; decoding one takes at most about 200 MB.
  FILES_MAX_IMAGE_PIXELS: envInt(1, 268_402_689).default(50_000_000),
  // A few sizes in a few formats, the srcset of a page or two; each variant is at most 2048 px a side.
  FILES_MAX_VARIANTS: envInt(0, 1000).default(16),
};

const filesEnvObject = z.object(filesEnv);

export function fileSettings(e: z.output<typeof filesEnvObject> & { S3_BUCKET?: string }): FileSettings {
  if (e.FILES_DOWNLOAD_REDIRECT && !e.S3_BUCKET) throw new ConfigError('Invalid configuration:\n  FILES_DOWNLOAD_REDIRECT: needs S3 storage (S3_BUCKET); a disk has no URL of its own');
  return {
    maxBytes: e.FILES_MAX_BYTES,
    quotaBytes: e.FILES_QUOTA_BYTES,
    allowedTypes: e.FILES_ALLOWED_TYPES ?? DEFAULT_ALLOWED_TYPES,
    downloadRedirect: e.FILES_DOWNLOAD_REDIRECT,
    uploadExpirySeconds: e.FILES_UPLOAD_EXPIRY_SECONDS,
    maxImagePixels: e.FILES_MAX_IMAGE_PIXELS,
    maxVariants: e.FILES_MAX_VARIANTS,
  };
}
