import { AppError, Conflict, NotFound, ValidationError } from '../../errors.ts';
import type { Announce } from '../../platform/bus/bus.ts';
import { inTransaction, type Db } from '../../platform/db/database.ts';
import type { Files } from '../files/index.ts';
import type { Projects } from '../projects/index.ts';
import { createAccess, need, notFound, type Grant } from './access.ts';
import { checkContent, normalizeTags, titleFromBody } from './content.ts';
import { diffLines, unifiedDiff } from './diff.ts';
import { createDocumentsRepository, type DocumentFilter, type ReaderView } from './repository.ts';
import type { DocumentRow, VersionRow } from './schema.ts';
import type { DocumentSettings } from './settings.ts';
import { createSharingRepository } from './sharing-repository.ts';

export interface DocumentsDeps {
  db: Db;
  /** `document.saved`, once per save (the `document:<id>` topic's audience hears it). */
  announce: Announce;
  settings: DocumentSettings;
  projects: Pick<Projects, 'exists'>;
  files: Pick<Files, 'get' | 'signedUrlFor'>;
}

/** How long a link to an attachment's bytes works: long enough to start the download it was asked for. */
const ATTACHMENT_LINK_SECONDS = 300;

const conflict = (current: VersionRow) =>
  new AppError(409, 'version_conflict', 'Conflict', `The document is at version ${current.number} now; merge your edit into it and save again with baseVersion ${current.number}`, {
    extra: { currentVersion: { number: current.number, title: current.title, body: current.body, authorId: current.authorId, createdAt: current.createdAt.toISOString() } },
  });

/**
 * Documents: Markdown with every save a version, the newest DOCUMENTS_MAX_VERSIONS kept. A save names the
 * version it was based on and wins only if that is still the current one;
 * otherwise 409 with the current version, and nothing is overwritten.
 */
export function createDocuments(d: DocumentsDeps) {
  const repo = createDocumentsRepository(d.db);
  const sharing = createSharingRepository(d.db);
  const access = createAccess(repo, sharing);

  async function currentConflict(id: string): Promise<AppError> {
    const doc = await repo.byId(id);
    const current = doc && (await repo.version(id, doc.version));
    return current ? conflict(current) : NotFound('Document', 'document_not_found');
  }

  /** A version of the document; one older than those kept (DOCUMENTS_MAX_VERSIONS) is a 404 that says so. */
  async function versionOf(doc: DocumentRow, number: number): Promise<VersionRow> {
    const v = await repo.version(doc.id, number);
    if (v) return v;
    if (number > doc.version) throw NotFound('Version', 'version_not_found');
    throw new AppError(404, 'version_not_found', 'Not found', `Version ${number} is no longer kept: a document keeps its newest ${d.settings.maxVersions} versions`);
  }

  async function checkProject(userId: string, projectId: string | null | undefined) {
    if (projectId && !(await d.projects.exists(userId, projectId))) throw NotFound('Project', 'project_not_found');
  }

  /** The document as its reader sees it now: deleted by another request since this one's check, a 404. */
  async function current(userId: string, id: string): Promise<ReaderView> {
    const view = await repo.read(userId, id);
    if (!view) throw notFound();
    return view;
  }

  /** Writes a new version from `base`, in one transaction with the document's update; a stale base is a 409. */
  async function write(userId: string, id: string, base: number, next: (doc: DocumentRow) => { title: string; body: string }, restoredFrom: number | null): Promise<ReaderView> {
    const saved = await inTransaction(d.db, async (tx) => {
      const { doc } = await access.forUser(userId, id, 'editor', 'save this document', tx);
      if (doc.version !== base) return undefined;
      const content = next(doc);
      checkContent(content, d.settings.maxBytes);
      // Nothing changed: no new version for it.
      if (content.title === doc.title && content.body === doc.body && restoredFrom === null) return doc;
      return repo.saveVersion(id, base, content, { authorId: userId, restoredFrom, keep: d.settings.maxVersions }, tx);
    });
    if (!saved) throw await currentConflict(id);
    // Whoever has it open learns there is a newer version before their own save would meet a 409.
    if (saved.version !== base) d.announce('document.saved', { userId, documentId: id, version: saved.version, authorId: userId });
    return current(userId, id);
  }

  return {
    access,

    async create(userId: string, input: { title?: string; body?: string; tags?: string[]; projectId?: string; isTemplate?: boolean; templateId?: string }): Promise<ReaderView> {
      let template: DocumentRow | undefined;
      if (input.templateId) {
        template = (await access.forUser(userId, input.templateId)).doc;
        if (!template.isTemplate) throw ValidationError('That document is not a template', 'not_a_template');
      }
      await checkProject(userId, input.projectId);
      const body = input.body ?? template?.body ?? '';
      const title = input.title ?? template?.title ?? titleFromBody(body);
      if (title === undefined) throw ValidationError('A new document needs a title, a body or a template to start from', 'empty_document');
      checkContent({ title, body }, d.settings.maxBytes);
      const max = d.settings.maxPerUser;
      const doc = await inTransaction(d.db, async (tx) => {
        // Creations side by side take turns here, so each counts the documents the others made: none passes the cap.
        await repo.lockOwner(userId, tx);
        if ((await repo.countOwned(userId, tx)) >= max) throw Conflict(`At most ${max} documents per user: delete one first`, 'document_limit');
        return repo.insert({ ownerId: userId, title, body, tags: normalizeTags(input.tags ?? template?.tags ?? []), projectId: input.projectId ?? null, isTemplate: input.isTemplate ?? false }, userId, tx);
      });
      return { doc, role: 'owner', favorite: false, lastViewedAt: null };
    },

    /** The document as this reader sees it, without touching their recents. */
    view: async (userId: string, id: string): Promise<ReaderView> => (await access.forUser(userId, id)).view!,

    /** Reading a document puts it at the top of the reader's recents. */
    async get(userId: string, id: string): Promise<ReaderView> {
      const { view } = await access.forUser(userId, id);
      const now = new Date();
      await repo.markViewed(id, userId, now);
      return { ...view!, lastViewedAt: now };
    },

    /** The document as this reader may see it, without touching their recents (other modules' reads: indexing, search). */
    async peek(userId: string, id: string): Promise<ReaderView> {
      return (await access.forUser(userId, id)).view!;
    },

    /** The owner of a document that still exists (and whose owner's account does): who may always read it, for indexing that serves every reader. */
    ownerOf: async (id: string): Promise<string | undefined> => (await repo.shown(id))?.ownerId,

    list: (userId: string, filter: DocumentFilter & { limit: number; cursor?: string }) => repo.list(userId, filter),
    recent: (userId: string, limit: number) => repo.recent(userId, limit),

    save(userId: string, id: string, input: { title?: string; body?: string; baseVersion: number }): Promise<ReaderView> {
      return write(userId, id, input.baseVersion, (doc) => ({ title: input.title ?? doc.title, body: input.body ?? doc.body }), null);
    },

    /** A restore is a new version with that version's title and body; with `baseVersion`, refused if the document moved on. */
    async restore(userId: string, id: string, number: number, baseVersion?: number): Promise<ReaderView> {
      const { doc } = await access.forUser(userId, id, 'editor', 'restore a version');
      const old = await versionOf(doc, number);
      return write(userId, id, baseVersion ?? doc.version, () => ({ title: old.title, body: old.body }), number);
    },

    /** Tags and archiving: editors; making it a template or moving it to a project: the owner. */
    async update(userId: string, id: string, patch: { tags?: string[]; archived?: boolean; isTemplate?: boolean; projectId?: string | null }): Promise<ReaderView> {
      const grant = await access.forUser(userId, id, 'editor', 'change this document');
      if (patch.isTemplate !== undefined || patch.projectId !== undefined) need(grant, 'owner', 'make it a template or move it to a project');
      await checkProject(userId, patch.projectId);
      await repo.update(id, { ...patch, tags: patch.tags && normalizeTags(patch.tags) });
      return current(userId, id);
    },

    /** Each reader's own favorite. */
    async setFavorite(userId: string, id: string, favorite: boolean): Promise<ReaderView> {
      await access.forUser(userId, id);
      await repo.setFavorite(id, userId, favorite);
      return current(userId, id);
    },

    async delete(userId: string, id: string): Promise<void> {
      await access.forUser(userId, id, 'owner', 'delete this document');
      await repo.delete(id);
      d.announce('document.deleted', { userId, documentId: id });
    },

    /** A subquery (SQL) of the ids of the documents the user may read, with this tag: for a search that runs on the same database. */
    readableIds: (userId: string, tag?: string) => repo.readableIds(userId, tag?.trim().toLowerCase()),

    async versions(userId: string, id: string, page: { limit: number; before?: number }) {
      await access.forUser(userId, id);
      return repo.versions(id, page);
    },

    async version(userId: string, id: string, number: number): Promise<VersionRow> {
      const { doc } = await access.forUser(userId, id);
      return versionOf(doc, number);
    },

    async diff(userId: string, id: string, from: number, to: number) {
      const { doc } = await access.forUser(userId, id);
      const [a, b] = await Promise.all([versionOf(doc, from), versionOf(doc, to)]);
      const lines = diffLines(a.body, b.body);
      return { from, to, added: lines.added, removed: lines.removed, titleChanged: a.title !== b.title, diff: unifiedDiff(lines, { from: `v${from}`, to: `v${to}` }) };
    },

    async attachments(userId: string, id: string) {
      await access.forUser(userId, id);
      return repo.attachments(id);
    },

    /**
     * A short-lived signed link to an attachment's bytes, for any reader of the document: the file is its
     * owner's, whose own download route would not serve a reader.
     */
    async attachmentUrl(userId: string, id: string, attachmentId: string): Promise<string> {
      await access.forUser(userId, id);
      const row = await repo.attachment(id, attachmentId);
      if (!row) throw NotFound('Attachment', 'attachment_not_found');
      return (await d.files.signedUrlFor(row.fileId, ATTACHMENT_LINK_SECONDS)).path;
    },

    /** Only the caller's own file (another user's is not found, as in the files module). */
    async attach(userId: string, id: string, fileId: string) {
      await access.forUser(userId, id, 'editor', 'attach files');
      const file = await d.files.get(userId, fileId);
      const row = await repo.attach({ documentId: id, fileId, addedBy: userId, name: file.name, mimeType: file.mimeType, size: file.size });
      if (!row) throw Conflict('This file is already attached to the document', 'already_attached');
      return row;
    },

    async detach(userId: string, id: string, attachmentId: string): Promise<void> {
      await access.forUser(userId, id, 'editor', 'remove attachments');
      if (!(await repo.detach(id, attachmentId))) throw NotFound('Attachment', 'attachment_not_found');
    },

    forgetFile: (fileId: string) => repo.forgetFile(fileId),

    /** For the document's WebSocket topic: NotFound unless the user can read it. */
    async authorizeTopic(userId: string, id: string): Promise<void> {
      await access.forUser(userId, id);
    },
  };
}

export type Documents = ReturnType<typeof createDocuments>;
export type { Grant };
