import { z } from 'zod';
import { optionalBody, pageQuery } from '../../http/pagination.ts';
import { FITS, MAX_TRANSFORM_PX, OUTPUT_FORMATS } from './images.ts';

export const fileSchema = z
  .object({
    id: z.uuid(),
    name: z.string(),
    mimeType: z.string().describe('What the bytes are, sniffed on upload; never what the client said'),
    size: z.number().int(),
    sha256: z.string(),
    thumbnail: z
      .enum(['pending', 'ready', 'failed'])
      .nullable()
      .describe('Images: `pending` until the background job has made it, then `ready` (GET /v1/files/{id}/thumbnail) or `failed`; null for other files'),
    projectId: z.uuid().nullable(),
    conversationId: z.uuid().nullable(),
    createdAt: z.string(),
    updatedAt: z.string(),
  })
  .meta({ id: 'File' });

export const fileParams = z.object({ id: z.uuid() });

export const filesQuery = pageQuery.extend({
  projectId: z.uuid().optional(),
  conversationId: z.uuid().optional(),
  type: z
    .string()
    .regex(/^[a-z0-9.+-]+\/([a-z0-9.+-]+)?$/i, 'a MIME type, or a family ending in / (image/)')
    .optional()
    .describe('`image/png`, or `image/` for the whole family'),
});

export const renameBody = z.object({ name: z.string().trim().min(1).max(255) }).strict();

export const quotaSchema = z
  .object({
    used: z.number().int(),
    limit: z.number().int(),
    remaining: z.number().int(),
    custom: z.boolean().describe("true when an admin set this user's quota; false: the deployment's default"),
  })
  .meta({ id: 'FileQuota' });

export const userParams = z.object({ userId: z.uuid() });
export const setQuotaBody = z.object({ bytes: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER).nullable().describe('null: back to the default (FILES_QUOTA_BYTES)') }).strict();

const side = (what: string) => z.coerce.number().int().min(1).max(MAX_TRANSFORM_PX).optional().describe(`${what} in pixels, 1 to ${MAX_TRANSFORM_PX}`);
/** An on-demand image transform; fields all optional (none: the original). */
export const transformFields = {
  width: side('Width'),
  height: side('Height'),
  fit: z.enum(FITS).optional().describe('How the image fills width × height (default cover); needs width or height'),
  format: z.enum(OUTPUT_FORMATS).optional().describe("Output format (default: the original's when it is one of these, else webp)"),
};

/** Optional: no body (or `null`) is a 15-minute link to the original. */
export const signedUrlBody = optionalBody(
  z
    .object({
      expiresIn: z.number().int().min(10).max(7 * 24 * 3600).default(900).describe('Seconds the link works (default 15 minutes, at most a week)'),
      ...transformFields,
    })
    .strict(),
);

export const signedUrlSchema = z.object({ url: z.string(), expiresAt: z.string() }).meta({ id: 'SignedFileUrl' });

export const contentQuery = z.object({
  ...transformFields,
  expires: z.coerce.number().int().positive().optional(),
  signature: z.string().max(200).optional(),
});
