import { z } from 'zod';
import { nameText } from '../../http/names.ts';
import { calendarDay } from '../../http/dates.ts';
import { opaqueCursor, pageQuery } from '../../http/pagination.ts';
import type { CollectionRow, ItemRow } from './schema.ts';

export const collectionSchema = z
  .object({ id: z.uuid(), name: z.string(), description: z.string().nullable(), projectId: z.uuid().nullable(), createdAt: z.string(), updatedAt: z.string() })
  .meta({ id: 'KnowledgeCollection' });

export const itemSchema = z
  .object({
    id: z.uuid(),
    kind: z.enum(['file', 'document']),
    refId: z.uuid().describe('The file or document'),
    title: z.string(),
    status: z.enum(['queued', 'indexing', 'ready', 'failed']),
    error: z.object({ code: z.string(), message: z.string() }).nullable(),
    chunks: z.number().int().describe('Passages stored'),
    tokens: z.number().int(),
    embeddingModel: z.string().nullable().describe('null: indexed for full-text search only'),
    truncated: z.boolean().describe('Only the first 2,000,000 characters of a huge text were indexed'),
    indexedAt: z.string().nullable(),
  })
  .meta({ id: 'KnowledgeItem' });

export const toCollection = (c: CollectionRow) => ({ id: c.id, name: c.name, description: c.description, projectId: c.projectId, createdAt: c.createdAt.toISOString(), updatedAt: c.updatedAt.toISOString() });
export const toItem = (i: ItemRow) => ({
  id: i.id,
  kind: i.kind,
  refId: i.refId,
  title: i.title,
  status: i.status,
  error: i.error ?? null,
  chunks: i.chunks,
  tokens: i.tokens,
  embeddingModel: i.embeddingModel,
  truncated: i.truncated,
  indexedAt: i.indexedAt?.toISOString() ?? null,
});

const name = nameText(200);
const description = z.string().trim().max(2000).nullable();

export const createCollectionBody = z.object({ name, description: description.optional(), projectId: z.uuid().nullable().optional() }).strict();
export const updateCollectionBody = z
  .object({ name: name.optional(), description: description.optional(), projectId: z.uuid().nullable().optional() })
  .strict()
  .refine((b) => Object.keys(b).length > 0, 'nothing to change');
export const addItemBody = z
  .union([z.object({ fileId: z.uuid() }).strict(), z.object({ documentId: z.uuid() }).strict()])
  .describe('One of your files (`fileId`) or a document you can read (`documentId`)');

export const collectionParams = z.object({ id: z.uuid() });
export const collectionItemParams = z.object({ id: z.uuid(), itemId: z.uuid() });
export const itemParams = z.object({ itemId: z.uuid() });
export const collectionsQuery = pageQuery.extend({ projectId: z.uuid().optional() });

const uuidList = z
  .string()
  .transform((v) => v.split(',').map((s) => s.trim()).filter(Boolean))
  .pipe(z.array(z.uuid()).min(1).max(50));
const day = calendarDay.transform((d) => new Date(`${d}T00:00:00Z`));

export const searchQuery = z.object({
  q: z.string().trim().min(1).max(500).describe('Words, "a phrase", or, -excluded (web-search syntax); also embedded for similarity when a model is configured'),
  collectionId: uuidList.optional().describe('Comma-separated collection ids: only their items'),
  projectId: z.uuid().optional().describe("Only the items of this project's collections"),
  kind: z
    .string()
    .transform((v) => v.split(',').map((s) => s.trim()))
    .pipe(z.array(z.enum(['document', 'file', 'conversation'])).min(1))
    .optional()
    .describe('Comma-separated: document, file, conversation (default: all)'),
  tag: z.string().trim().min(1).max(50).optional().describe('Documents with this tag only'),
  from: day.optional().describe('Indexed (or written) on or after this day (UTC)'),
  to: day.optional().describe('Before this day (UTC)'),
  limit: z.coerce.number().int().min(1).max(50).default(10),
  cursor: opaqueCursor((text) => (/^\d{1,4}$/.test(text) && Number(text) < 1000 ? Number(text) : undefined)),
});

export const encodeOffset = (offset: number) => Buffer.from(String(offset)).toString('base64url');

export const hitSchema = z
  .object({
    kind: z.enum(['document', 'file', 'conversation']),
    id: z.uuid().describe('The passage, or the message'),
    itemId: z.uuid().nullable(),
    refId: z.uuid().describe('The document, file or conversation'),
    messageId: z.uuid().nullable(),
    title: z.string(),
    snippet: z.string().describe('HTML-escaped text, each match in <mark>…</mark>'),
    headings: z.array(z.string()),
    start: z.number().int().nullable().describe("Offsets of the passage in the source's text"),
    end: z.number().int().nullable(),
    score: z.number().describe('Reciprocal rank fusion score (k = 60)'),
    ranks: z.object({ fullText: z.number().int().nullable(), vector: z.number().int().nullable() }),
  })
  .meta({ id: 'KnowledgeHit' });

export const searchResponse = z.object({
  data: z.array(hitSchema),
  nextCursor: z.string().nullable(),
  mode: z.enum(['hybrid', 'full-text']),
  degraded: z.boolean().describe('true: the query could not be embedded just now; these are full-text results'),
});

export const statusSchema = z
  .object({
    mode: z.enum(['hybrid', 'full-text']).describe('hybrid when an embedding model is configured'),
    embeddingModel: z.string().nullable(),
    vectorIndex: z.enum(['pgvector', 'exact']).describe('pgvector: an HNSW index; exact: every embedding compared (PostgreSQL without the extension)'),
  })
  .meta({ id: 'KnowledgeStatus' });
