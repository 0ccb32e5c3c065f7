import { sql, type SQL } from 'drizzle-orm';
import { boolean, customType, index, integer, jsonb, pgTable, primaryKey, real, text, uniqueIndex, uuid } from 'drizzle-orm/pg-core';
import { createdAt, id, time } from '../../platform/db/columns.ts';
import { projects } from '../projects/index.ts';
import { users } from '../users/index.ts';

const tsvector = customType<{ data: string }>({ dataType: () => 'tsvector' });

/** A named set of the user's files and documents that answers can draw on; a project's when `projectId` is set (kept, as the user's own, when the project goes). */
export const knowledgeCollections = pgTable(
  'knowledge_collections',
  {
    id: id(),
    userId: uuid('user_id').notNull().references(() => users.id, { onDelete: 'cascade' }),
    projectId: uuid('project_id').references(() => projects.id, { onDelete: 'set null' }),
    name: text('name').notNull(),
    description: text('description'),
    createdAt: createdAt(),
    updatedAt: time('updated_at').notNull().defaultNow(),
  },
  (t) => [index('knowledge_collections_user_idx').on(t.userId, t.id), index('knowledge_collections_project_idx').on(t.projectId).where(sql`${t.projectId} is not null`)],
);

/**
 * One indexed thing (a file or a document), once however many collections hold it: its passages
 * belong to it. `status` follows its ingestion; `error` says why it failed.
 */
export const knowledgeItems = pgTable(
  'knowledge_items',
  {
    id: id(),
    userId: uuid('user_id').notNull().references(() => users.id, { onDelete: 'cascade' }),
    kind: text('kind', { enum: ['file', 'document'] }).notNull(),
    refId: uuid('ref_id').notNull(),
    title: text('title').notNull(),
    status: text('status', { enum: ['queued', 'indexing', 'ready', 'failed'] }).notNull().default('queued'),
    error: jsonb('error').$type<{ code: string; message: string }>(),
    chunks: integer('chunks').notNull().default(0),
    tokens: integer('tokens').notNull().default(0),
    /** The model its passages were embedded with; null when indexed for full text only. */
    embeddingModel: text('embedding_model'),
    /** Only the first MAX_TEXT_CHARS characters of the text were indexed (a huge file). */
    truncated: boolean('truncated').notNull().default(false),
    /** The document version indexed (null for files). */
    sourceVersion: integer('source_version'),
    indexedAt: time('indexed_at'),
    createdAt: createdAt(),
    updatedAt: time('updated_at').notNull().defaultNow(),
  },
  (t) => [uniqueIndex('knowledge_items_ref_key').on(t.kind, t.refId), index('knowledge_items_user_idx').on(t.userId, t.id)],
);

export const knowledgeCollectionItems = pgTable(
  'knowledge_collection_items',
  {
    collectionId: uuid('collection_id')
      .notNull()
      .references(() => knowledgeCollections.id, { onDelete: 'cascade' }),
    itemId: uuid('item_id')
      .notNull()
      .references(() => knowledgeItems.id, { onDelete: 'cascade' }),
    addedAt: createdAt(),
  },
  (t) => [primaryKey({ columns: [t.collectionId, t.itemId] }), index('knowledge_collection_items_item_idx').on(t.itemId)],
);

/** Collections a conversation draws on, beside its project's. */
export const knowledgeConversationCollections = pgTable(
  'knowledge_conversation_collections',
  {
    conversationId: uuid('conversation_id').notNull(),
    collectionId: uuid('collection_id')
      .notNull()
      .references(() => knowledgeCollections.id, { onDelete: 'cascade' }),
    userId: uuid('user_id')
      .notNull()
      .references(() => users.id, { onDelete: 'cascade' }),
    addedAt: createdAt(),
  },
  // Deleting a collection or a user finds its rows by these, not by a scan of the table.
  (t) => [primaryKey({ columns: [t.conversationId, t.collectionId] }), index('knowledge_conversation_collections_collection_idx').on(t.collectionId), index('knowledge_conversation_collections_user_idx').on(t.userId)],
);

/**
 * A passage of an item: a contiguous slice of its text (offsets for citations), under its
 * headings, with its full-text vector and, when an embedding model is configured, its embedding
 * (normalised, as `real[]`: an HNSW index over it cast to pgvector's type is made at start where
 * the extension exists; elsewhere search scans it exactly).
 */
export const knowledgeChunks = pgTable(
  'knowledge_chunks',
  {
    id: id(),
    itemId: uuid('item_id')
      .notNull()
      .references(() => knowledgeItems.id, { onDelete: 'cascade' }),
    /** The owner of the item, copied so search filters without a join. */
    userId: uuid('user_id').notNull(),
    index: integer('index').notNull(),
    text: text('text').notNull(),
    headings: text('headings').array().notNull().default([]),
    start: integer('start_offset').notNull(),
    end: integer('end_offset').notNull(),
    tokens: integer('tokens').notNull(),
    hash: text('hash').notNull(),
    embedding: real('embedding').array(),
    dims: integer('dims'),
    searchVector: tsvector('search_vector').generatedAlwaysAs((): SQL => sql`to_tsvector('english', ${knowledgeChunks.text})`),
  },
  (t) => [
    uniqueIndex('knowledge_chunks_item_key').on(t.itemId, t.index),
    // Full-text search reads one user's matching passages (btree_gin: a GIN index leading with the user), not
    // every user's. It serves lookups by user alone too. No btree leads with the user: with one, the planner
    // took to reading a user's passages in its order and testing each tsvector (read from TOAST, a cost it
    // does not see) where the GIN index gives the matches alone.
    index('knowledge_chunks_user_search_idx').using('gin', t.userId, t.searchVector),
  ],
);

export type CollectionRow = typeof knowledgeCollections.$inferSelect;
export type ItemRow = typeof knowledgeItems.$inferSelect;
export type ChunkRow = typeof knowledgeChunks.$inferSelect;
