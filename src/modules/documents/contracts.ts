import { z } from 'zod';
import { nameText } from '../../http/names.ts';
import { opaqueCursor, optionalBody, pageQuery } from '../../http/pagination.ts';
import { ONE_LINE } from '../../platform/text.ts';
import { LIMITS } from './settings.ts';

export const ROLES = ['owner', 'editor', 'commenter', 'viewer'] as const;
const role = z.enum(ROLES);
const shareRole = z.enum(['viewer', 'commenter', 'editor']);
const linkRole = z.enum(['viewer', 'commenter']);

const title = nameText(LIMITS.titleChars);
/** Size and content are checked by the service (bytes, against DOCUMENTS_MAX_BYTES; control characters). */
const body = z.string();
const tag = z.string().trim().toLowerCase().min(1).max(LIMITS.tagChars).regex(ONE_LINE, 'one line, without control characters or direction overrides');
const tags = z
  .array(tag)
  .max(LIMITS.tags * 2)
  .transform((xs) => [...new Set(xs)])
  .pipe(z.array(z.string()).max(LIMITS.tags, `at most ${LIMITS.tags} distinct tags`));
const flag = z.enum(['true', 'false']).transform((v) => v === 'true');
/** Version numbers and offsets are 32-bit integer columns: a bigger number is a 400, never a database error. */
const INT4_MAX = 2_147_483_647;
const versionNumber = z.number().int().min(1).max(INT4_MAX);
const versionParam = z.coerce.number().int().min(1).max(INT4_MAX);
const offset = z.number().int().min(0).max(INT4_MAX);

export const documentParams = z.object({ id: z.uuid() });
export const versionParams = z.object({ id: z.uuid(), number: versionParam });
export const attachmentParams = z.object({ id: z.uuid(), attachmentId: z.uuid() });
export const shareParams = z.object({ id: z.uuid(), userId: z.uuid() });
export const linkParams = z.object({ id: z.uuid(), linkId: z.uuid() });
export const commentParams = z.object({ id: z.uuid(), commentId: z.uuid() });
/** A share link's token travels in a header, never in the URL: URLs end up in access logs and proxies. */
export const shareTokenHeaders = z.looseObject({ 'x-share-token': z.string().min(10).max(100).describe('The token of a share link') });

export const createDocumentBody = z
  .object({
    title: title.optional().describe('Left out: the first line of the body, or the template\'s title'),
    body: body.optional(),
    tags: tags.optional(),
    projectId: z.uuid().optional().describe('One of your projects'),
    isTemplate: z.boolean().optional(),
    templateId: z.uuid().optional().describe('Start from this template (one you can read): its title, body and tags, unless given here'),
  })
  .strict();

export const saveDocumentBody = z
  .object({
    title: title.optional(),
    body: body.optional(),
    baseVersion: versionNumber.describe('The version this edit started from; if it is no longer the current one: 409 version_conflict'),
  })
  .strict()
  .refine((b) => b.title !== undefined || b.body !== undefined, 'a save changes the title, the body or both');

export const updateDocumentBody = z
  .object({ tags, archived: z.boolean(), isTemplate: z.boolean(), projectId: z.uuid().nullable() })
  .partial()
  .strict();

export const favoriteBody = z.object({ favorite: z.boolean() }).strict();

export const documentsQuery = pageQuery.extend({
  tag: tag.optional(),
  favorite: flag.optional(),
  archived: flag.optional().describe('Default false: archived documents are left out'),
  template: flag.optional(),
  projectId: z.uuid().optional(),
  sharedWithMe: flag.optional().describe('true: only documents others shared with you; false: only your own'),
});

export const recentQuery = z.object({ limit: z.coerce.number().int().min(1).max(50).default(20) });

export const versionsQuery = z.object({
  limit: z.coerce.number().int().min(1).max(100).default(20),
  cursor: opaqueCursor((text) => (/^[1-9][0-9]{0,9}$/.test(text) && Number(text) <= INT4_MAX ? Number(text) : undefined)),
});

export const diffQuery = z.object({ from: versionParam, to: versionParam });

export const restoreBody = z.object({ baseVersion: versionNumber.optional().describe('When given, the restore is refused (409) if the document moved on') }).strict();

export const attachBody = z.object({ fileId: z.uuid().describe('One of your files') }).strict();

/** Where a page of shares ended: the last share's time in microseconds and its reader (see sharing-repository.ts). */
export const sharesQuery = pageQuery.extend({
  cursor: opaqueCursor((text) => {
    const [micros, userId] = text.split(' ');
    return /^\d{1,17}$/.test(micros ?? '') && z.uuid().safeParse(userId).success ? { micros: micros!, userId: userId! } : undefined;
  }),
});
export const shareCursor = (last: { micros: string; userId: string }) => Buffer.from(`${last.micros} ${last.userId}`).toString('base64url');

export const shareBody = z.object({ email: z.email().max(320), role: shareRole }).strict();
export const shareRoleBody = z.object({ role: shareRole }).strict();

/** Optional: no body is a viewer link that works until revoked. */
export const linkBody = optionalBody(
  z
    .object({
      role: linkRole.default('viewer'),
      expiresIn: z.number().int().min(60).max(365 * 24 * 3600).optional().describe('Seconds until the link stops working; left out: until revoked'),
    })
    .strict(),
);

export const commentBody = z
  .object({
    body: z.string().trim().min(1).max(LIMITS.commentChars),
    parentId: z.uuid().optional().describe('The comment this replies to; left out: a new thread, which must quote a passage'),
    quote: z.string().min(1).max(LIMITS.quoteChars).optional().describe('A new thread: the passage it is about, as it is in the current body'),
    anchorStart: offset.optional(),
    anchorEnd: offset.optional(),
    mentions: z.array(z.uuid()).max(LIMITS.mentions).transform((xs) => [...new Set(xs)]).optional().describe('Users the document is shared with (or its owner)'),
  })
  .strict();

export const editCommentBody = z.object({ body: z.string().trim().min(1).max(LIMITS.commentChars) }).strict();

export const commentsQuery = pageQuery.extend({ resolved: flag.optional().describe('Threads resolved (true) or open (false), with their replies') });

export const presenceBody = z.object({ state: z.enum(['viewing', 'editing']) }).strict();

const iso = z.iso.datetime();

export const documentSummarySchema = z
  .object({
    id: z.uuid(),
    ownerId: z.uuid(),
    projectId: z.uuid().nullable(),
    title: z.string(),
    tags: z.array(z.string()),
    archived: z.boolean(),
    isTemplate: z.boolean(),
    version: z.number().int(),
    role: role.describe('Yours on this document'),
    favorite: z.boolean(),
    lastViewedAt: iso.nullable(),
    createdAt: iso,
    updatedAt: iso,
  })
  .meta({ id: 'DocumentSummary' });

export const documentSchema = documentSummarySchema.extend({ body: z.string() }).meta({ id: 'Document' });

export const versionSchema = z
  .object({ number: z.number().int(), title: z.string(), body: z.string(), authorId: z.uuid().nullable(), restoredFrom: z.number().int().nullable(), createdAt: iso })
  .meta({ id: 'DocumentVersion' });
export const versionSummarySchema = versionSchema.omit({ body: true }).extend({ bytes: z.number().int() }).meta({ id: 'DocumentVersionSummary' });

export const diffSchema = z
  .object({ from: z.number().int(), to: z.number().int(), added: z.number().int(), removed: z.number().int(), titleChanged: z.boolean(), diff: z.string().describe('Unified diff of the bodies, line by line') })
  .meta({ id: 'DocumentDiff' });

export const attachmentSchema = z
  .object({ id: z.uuid(), fileId: z.uuid(), name: z.string(), mimeType: z.string(), size: z.number().int(), addedBy: z.uuid().nullable(), createdAt: iso })
  .meta({ id: 'DocumentAttachment' });

export const shareSchema = z.object({ userId: z.uuid(), email: z.string(), role: shareRole, createdAt: iso, updatedAt: iso }).meta({ id: 'DocumentShare' });

export const linkSchema = z
  .object({ id: z.uuid(), role: linkRole, last4: z.string(), expiresAt: iso.nullable(), revokedAt: iso.nullable(), createdAt: iso })
  .meta({ id: 'DocumentLink' });
export const newLinkSchema = linkSchema.extend({ token: z.string().describe('Shown once: only its hash is kept. Sent as `X-Share-Token` to `/v1/documents/shared`') }).meta({ id: 'NewDocumentLink' });

export const commentSchema = z
  .object({
    id: z.uuid(),
    documentId: z.uuid(),
    parentId: z.uuid().nullable(),
    depth: z.number().int(),
    authorId: z.uuid().nullable(),
    body: z.string(),
    quote: z.string().nullable(),
    anchorStart: z.number().int().nullable(),
    anchorEnd: z.number().int().nullable(),
    mentions: z.array(z.uuid()),
    resolvedAt: iso.nullable(),
    resolvedBy: z.uuid().nullable(),
    createdAt: iso,
    updatedAt: iso,
  })
  .meta({ id: 'DocumentComment' });

export const presenceSchema = z.object({ userId: z.uuid(), state: z.enum(['viewing', 'editing']), since: iso, expiresAt: iso }).meta({ id: 'DocumentPresence' });
