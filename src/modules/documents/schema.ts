import { sql } from 'drizzle-orm';
import { type AnyPgColumn, bigint, boolean, check, index, integer, pgTable, primaryKey, text, uniqueIndex, uuid } from 'drizzle-orm/pg-core';
import { createdAt, id, time } from '../../platform/db/columns.ts';
import { projects } from '../projects/index.ts';
import { users } from '../users/index.ts';

/** A Markdown document: its current title and body (also its latest version's), tags and flags. */
export const documents = pgTable(
  'documents',
  {
    id: id(),
    ownerId: uuid('owner_id').notNull().references(() => users.id, { onDelete: 'cascade' }),
    /** The project it belongs to, if any (the document stays its owner's when the project goes; the project's id goes). */
    projectId: uuid('project_id').references(() => projects.id, { onDelete: 'set null' }),
    title: text('title').notNull(),
    body: text('body').notNull(),
    tags: text('tags').array().notNull().default([]),
    archived: boolean('archived').notNull().default(false),
    /** Offered as a starting point: `POST /documents { templateId }` copies it. */
    isTemplate: boolean('is_template').notNull().default(false),
    /** The number of its newest version; a save names the one it was based on, and wins only if it is still this. */
    version: integer('version').notNull().default(1),
    createdAt: createdAt(),
    updatedAt: time('updated_at').notNull().defaultNow(),
  },
  (t) => [
    index('documents_owner_idx').on(t.ownerId, t.id),
    index('documents_tags_idx').using('gin', t.tags),
    index('documents_project_idx').on(t.projectId).where(sql`${t.projectId} is not null`),
  ],
);

/** Every save of a document, numbered from 1; never changed once written (a restore is a new one). */
export const documentVersions = pgTable(
  'document_versions',
  {
    documentId: uuid('document_id').notNull().references(() => documents.id, { onDelete: 'cascade' }),
    number: integer('number').notNull(),
    title: text('title').notNull(),
    body: text('body').notNull(),
    authorId: uuid('author_id').references(() => users.id, { onDelete: 'set null' }),
    /** The version this one was restored from, when it is a restore. */
    restoredFrom: integer('restored_from'),
    createdAt: createdAt(),
  },
  // Foreign keys to users are indexed here and below: deleting a user otherwise scans every row of the table.
  (t) => [primaryKey({ columns: [t.documentId, t.number] }), index('document_versions_author_idx').on(t.authorId)],
);

/** One reader's own view of a document: a favorite of theirs, when they last opened it (recents). */
export const documentReaderState = pgTable(
  'document_reader_state',
  {
    documentId: uuid('document_id').notNull().references(() => documents.id, { onDelete: 'cascade' }),
    userId: uuid('user_id').notNull().references(() => users.id, { onDelete: 'cascade' }),
    favorite: boolean('favorite').notNull().default(false),
    lastViewedAt: time('last_viewed_at'),
  },
  (t) => [primaryKey({ columns: [t.documentId, t.userId] }), index('document_reader_state_recent_idx').on(t.userId, t.lastViewedAt)],
);

/** A file of the files module attached to a document; name, type and size as they were when attached. */
export const documentAttachments = pgTable(
  'document_attachments',
  {
    id: id(),
    documentId: uuid('document_id').notNull().references(() => documents.id, { onDelete: 'cascade' }),
    /** The files module's file (no foreign key across modules: `file.deleted` removes the attachment). */
    fileId: uuid('file_id').notNull(),
    addedBy: uuid('added_by').references(() => users.id, { onDelete: 'set null' }),
    name: text('name').notNull(),
    mimeType: text('mime_type').notNull(),
    size: bigint('size', { mode: 'number' }).notNull(),
    createdAt: createdAt(),
  },
  (t) => [uniqueIndex('document_attachments_file_key').on(t.documentId, t.fileId), index('document_attachments_file_idx').on(t.fileId), index('document_attachments_added_by_idx').on(t.addedBy)],
);

export const SHARE_ROLES = ['viewer', 'commenter', 'editor'] as const;
export type ShareRole = (typeof SHARE_ROLES)[number];

/** A document shared with another user, in a role. */
export const documentShares = pgTable(
  'document_shares',
  {
    documentId: uuid('document_id').notNull().references(() => documents.id, { onDelete: 'cascade' }),
    userId: uuid('user_id').notNull().references(() => users.id, { onDelete: 'cascade' }),
    role: text('role', { enum: SHARE_ROLES }).notNull(),
    createdAt: createdAt(),
    updatedAt: time('updated_at').notNull().defaultNow(),
  },
  (t) => [
    primaryKey({ columns: [t.documentId, t.userId] }),
    // What is shared with a reader, newest document first (the documents list reads it as far as a page needs).
    index('document_shares_user_document_idx').on(t.userId, t.documentId),
    // A document's shares page by page, oldest first.
    index('document_shares_document_created_idx').on(t.documentId, t.createdAt, t.userId),
    check('document_shares_role_check', sql`${t.role} in ('viewer', 'commenter', 'editor')`),
  ],
);

/** A share link: whoever holds the token (signed in) reads, or comments; only its SHA-256 is stored. */
export const documentLinks = pgTable(
  'document_links',
  {
    id: id(),
    documentId: uuid('document_id').notNull().references(() => documents.id, { onDelete: 'cascade' }),
    tokenHash: text('token_hash').notNull(),
    /** The token's last characters, to tell links apart in a list. */
    last4: text('last4').notNull(),
    role: text('role', { enum: ['viewer', 'commenter'] }).notNull(),
    expiresAt: time('expires_at'),
    revokedAt: time('revoked_at'),
    createdAt: createdAt(),
  },
  (t) => [
    uniqueIndex('document_links_token_key').on(t.tokenHash),
    // A document's links in the order they are listed, a page at a time.
    index('document_links_document_idx').on(t.documentId, t.id),
    // The daily purge of links that ended long ago reads only those that ended, not every live one.
    index('document_links_revoked_idx').on(t.revokedAt).where(sql`${t.revokedAt} is not null`),
    index('document_links_expires_idx').on(t.expiresAt).where(sql`${t.expiresAt} is not null`),
    check('document_links_role_check', sql`${t.role} in ('viewer', 'commenter')`),
  ],
);

/** A comment: a thread's root quotes a passage of the document; replies name their parent. */
export const documentComments = pgTable(
  'document_comments',
  {
    id: id(),
    documentId: uuid('document_id').notNull().references(() => documents.id, { onDelete: 'cascade' }),
    parentId: uuid('parent_id').references((): AnyPgColumn => documentComments.id, { onDelete: 'cascade' }),
    /** The thread's root (its own id for a root): a thread is listed, resolved and filtered as one. */
    threadId: uuid('thread_id').notNull(),
    /** 0 for a thread's root, the parent's depth + 1 for a reply (capped). */
    depth: integer('depth').notNull().default(0),
    authorId: uuid('author_id').references(() => users.id, { onDelete: 'set null' }),
    body: text('body').notNull(),
    /** The passage the thread is about, as quoted when it started, and where it was then (characters). */
    quote: text('quote'),
    anchorStart: integer('anchor_start'),
    anchorEnd: integer('anchor_end'),
    mentions: uuid('mentions').array().notNull().default([]),
    resolvedAt: time('resolved_at'),
    resolvedBy: uuid('resolved_by'),
    createdAt: createdAt(),
    updatedAt: time('updated_at').notNull().defaultNow(),
  },
  (t) => [
    index('document_comments_document_idx').on(t.documentId, t.id),
    index('document_comments_parent_idx').on(t.parentId),
    index('document_comments_thread_idx').on(t.threadId),
    index('document_comments_author_idx').on(t.authorId),
  ],
);

/** Who has a document open now: a heartbeat renews `expiresAt`; a row past it is gone (filtered, then purged). */
export const documentPresence = pgTable(
  'document_presence',
  {
    documentId: uuid('document_id').notNull().references(() => documents.id, { onDelete: 'cascade' }),
    userId: uuid('user_id').notNull().references(() => users.id, { onDelete: 'cascade' }),
    state: text('state', { enum: ['viewing', 'editing'] }).notNull(),
    since: time('since').notNull().defaultNow(),
    expiresAt: time('expires_at').notNull(),
  },
  (t) => [
    primaryKey({ columns: [t.documentId, t.userId] }),
    index('document_presence_expires_idx').on(t.expiresAt),
    index('document_presence_user_idx').on(t.userId),
    check('document_presence_state_check', sql`${t.state} in ('viewing', 'editing')`),
  ],
);

export type DocumentRow = typeof documents.$inferSelect;
export type VersionRow = typeof documentVersions.$inferSelect;
export type ShareRow = typeof documentShares.$inferSelect;
export type LinkRow = typeof documentLinks.$inferSelect;
export type CommentRow = typeof documentComments.$inferSelect;
export type AttachmentRow = typeof documentAttachments.$inferSelect;
export type PresenceRow = typeof documentPresence.$inferSelect;
