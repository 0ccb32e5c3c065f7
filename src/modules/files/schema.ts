import { sql } from 'drizzle-orm';
import { bigint, index, integer, pgTable, text, uuid } from 'drizzle-orm/pg-core';
import { createdAt, id, time } from '../../platform/db/columns.ts';
import { projects } from '../projects/index.ts';
import { users } from '../users/index.ts';

export type ThumbnailState = 'pending' | 'ready' | 'failed';

/** A stored file: its blob lives in the blob storage under `storageKey`; the type is what its bytes are. */
export const files = pgTable(
  'files',
  {
    id: id(),
    userId: uuid('user_id').notNull().references(() => users.id, { onDelete: 'cascade' }),
    /** The project or conversation it was uploaded for, if any (the file stays the user's when they are deleted; the project's id goes). */
    projectId: uuid('project_id').references(() => projects.id, { onDelete: 'set null' }),
    conversationId: uuid('conversation_id'),
    /** For display only: no path, no control characters. */
    name: text('name').notNull(),
    /** Sniffed from the bytes, never taken from the client. */
    mimeType: text('mime_type').notNull(),
    size: bigint('size', { mode: 'number' }).notNull(),
    sha256: text('sha256').notNull(),
    storageKey: text('storage_key').notNull(),
    /** The thumbnail's state for an image sharp can read (`pending`, `ready`, `failed`); null for every other file. */
    thumbnail: text('thumbnail').$type<ThumbnailState>(),
    createdAt: createdAt(),
    updatedAt: time('updated_at').notNull().defaultNow(),
  },
  (t) => [
    index('files_user_idx').on(t.userId, t.id),
    index('files_project_idx').on(t.projectId).where(sql`${t.projectId} is not null`),
    // GET /v1/files?conversationId=: a conversation's files, newest first, without reading the user's others.
    index('files_user_conversation_idx').on(t.userId, t.conversationId, t.id).where(sql`${t.conversationId} is not null`),
  ],
);

export type FileRow = typeof files.$inferSelect;

/** A user's file storage quota, when an admin set one other than the deployment's default. */
export const fileQuotas = pgTable('file_quotas', {
  userId: uuid('user_id')
    .primaryKey()
    .references(() => users.id, { onDelete: 'cascade' }),
  bytes: bigint('bytes', { mode: 'number' }).notNull(),
  updatedAt: time('updated_at').notNull().defaultNow(),
});

/**
 * What each user's files add up to, kept with every file recorded or deleted (in the same transaction), so
 * the quota an upload is checked against is one row, however many files the user has (a sum over them took
 * 100 ms at 100,000). A user without files has no row.
 */
export const fileUsage = pgTable('file_usage', {
  userId: uuid('user_id')
    .primaryKey()
    .references(() => users.id, { onDelete: 'cascade' }),
  bytes: bigint('bytes', { mode: 'number' }).notNull(),
  files: integer('files').notNull(),
});
