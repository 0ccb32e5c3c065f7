import { AppError, NotFound } from '../../errors.ts';
import { onReclaimed } from '../auth/index.ts';
import { defineModule } from '../module.ts';
import { createDocumentActions, type DocumentActions } from './ai-actions.ts';
import { commentRoutes } from './comment-routes.ts';
import { createComments, type Comments } from './comments.ts';
import { documentsFootprint } from './footprint.ts';
import { createPresence, type Presence } from './presence.ts';
import { presenceRoutes } from './presence-routes.ts';
import { documentsRoutes } from './routes.ts';
import {
  documentAttachments,
  documentComments,
  documentLinks,
  documentPresence,
  documentReaderState,
  documents,
  documentShares,
  documentVersions,
} from './schema.ts';
import { createDocuments, type Documents } from './service.ts';
import { documentSettings, documentsEnv, type DocumentSettings } from './settings.ts';
import { createSharing, type Sharing } from './sharing.ts';
import { sharingRoutes } from './sharing-routes.ts';
import { unshared } from './unshared.ts';
import { documentsExport } from './export.ts';
import { documentsErasure } from './erasure.ts';

export type { Documents } from './service.ts';

declare module '../../platform/bus/events.ts' {
  interface DomainEvents {
    /** A document was shared with `userId` (the new reader), or their role changed. */
    'document.shared': { userId: string; documentId: string; role: 'viewer' | 'commenter' | 'editor'; sharedBy: string; title: string };
    /** A comment was posted by `userId`; `mentions` name readers of the document (for notifications). */
    'comment.created': { userId: string; documentId: string; commentId: string; parentId: string | null; mentions: string[] };
    /**
     * `userId` may no longer read the document through a share: the owner removed it, or they left. Published
     * once the removal is committed (queued in its transaction); the share may have been given again since.
     */
    'document.unshared': { userId: string; documentId: string };
    /** The owner (`userId`) deleted the document. */
    'document.deleted': { userId: string; documentId: string };
    /**
     * A new version was saved (or restored) by `authorId` (also `userId`): one event per save, however many
     * readers; the readers following `document:<id>` hear it (the topic's audience).
     */
    'document.saved': { userId: string; documentId: string; version: number; authorId: string };
    /** Someone (`actorId`, also `userId`) arrived, switched between viewing and editing, or left: one event, heard as `document.saved` is. */
    'document.presence': { userId: string; documentId: string; actorId: string; state: 'viewing' | 'editing' | 'left' };
  }
}

declare module '../module.ts' {
  interface ServiceMap {
    /** Documents, versions (save, diff, restore), templates, favorites, recents, attachments, and who may do what. */
    documents: Documents;
    /** Shares with users by email and share links. */
    documentSharing: Sharing;
    /** Comment threads anchored to quoted passages. */
    documentComments: Comments;
    /** Who is viewing or editing a document now. */
    documentPresence: Presence;
    /** AI actions on a document (summary, suggested tags), as queued jobs. */
    documentActions: DocumentActions;
  }
  interface ModuleSettings {
    /** Document size limit, presence expiry, share links per document and their history, documents per user, comments per document. */
    documents: DocumentSettings;
  }
}

/** Documents: Markdown with versions and conflict-safe saves, templates, attachments, recents, sharing by email and link, comment threads, presence. */
export const documentsModule = defineModule({
  name: 'documents',
  erasure: ({ deps }) => documentsErasure(deps.db, deps.announce),
  exports: ({ deps }) => documentsExport(deps.db),
  tables: { documents, documentVersions, documentReaderState, documentAttachments, documentShares, documentLinks, documentComments, documentPresence },
  config: { env: documentsEnv, read: documentSettings },
  needs: ['files', 'projects', 'users', 'ai', 'jobs', 'safety'],
  provides: ['documents', 'documentSharing', 'documentComments', 'documentPresence', 'documentActions'],
  services({ deps, config, services }) {
    const documentsService = createDocuments({ db: deps.db, announce: deps.announce, settings: config.documents, projects: services.projects, files: services.files });
    // Presence follows a reader's role (removed: gone; no longer an editor: viewing).
    const sharing = createSharing({
      db: deps.db,
      access: documentsService.access,
      users: services.users,
      announce: deps.announce,
      jobs: services.jobs,
      roleChanged: (...change) => presence.roleChanged(...change),
      maxLinks: config.documents.maxLinks,
      linkHistoryDays: config.documents.linkHistoryDays,
    });
    const presence = createPresence({ db: deps.db, announce: deps.announce, presenceSeconds: config.documents.presenceSeconds });
    return {
      documents: documentsService,
      documentSharing: sharing,
      documentComments: createComments({ db: deps.db, readersAmong: sharing.readersAmong, announce: deps.announce, maxComments: config.documents.maxComments }),
      documentPresence: presence,
      documentActions: createDocumentActions({ ai: services.ai, documents: documentsService, users: services.users, jobs: services.jobs, safety: services.safety }),
    };
  },
  routes(app, ctx) {
    documentsRoutes(app, ctx);
    sharingRoutes(app, ctx);
    commentRoutes(app, ctx);
    presenceRoutes(app, ctx);
  },
  jobs: ({ deps, services }) => [services.documentActions.job, unshared.job(deps.bus)],
  schedules: ({ services }) => [
    // Presence is already filtered by its expiry; this removes the rows and tells readers who left.
    { name: 'documents.purge-presence', cron: '* * * * *', handler: async () => ({ purged: await services.documentPresence.purge() }) },
    // Revoking keeps a link's row (its token then answers 410): only the old ones go, so the owner's list stays short.
    { name: 'documents.purge-links', cron: '37 4 * * *', handler: async () => ({ purged: await services.documentSharing.purgeEndedLinks() }) },
  ],
  // A deleted file is no longer attached anywhere (the files module owns files; no foreign key crosses modules).
  subscriptions: ({ deps, services }) => [
    { group: 'documents', types: ['file.deleted'], handler: (event) => (event.type === 'file.deleted' ? services.documents.forgetFile(event.payload.fileId) : undefined) },
    // A reset proved the address for the first time: the readers and links chosen before were chosen by whoever held the account, maybe a stranger.
    onReclaimed('documents', deps.logger, 'document shares and links', async (userId, before) => {
      const dropped = await services.documentSharing.unshareAllMadeBefore(userId, before);
      return dropped.shares || dropped.links ? dropped : undefined;
    }),
  ],
  topics: ({ documents: docs, documentSharing: sharing }) => ({
    topics: [
      {
        name: 'document',
        withId: true,
        scope: 'documents',
        async authorize(p, id) {
          try {
            await docs.access.forUser(p.userId, id);
          } catch (err) {
            throw err instanceof AppError && err.status === 404 ? NotFound('Document') : err;
          }
        },
        // A save or a presence change is one event, not one per reader: who hears it is asked when it is delivered.
        audience: (id, userIds) => sharing.readersAmong(id, userIds),
      },
      { name: 'documents', scope: 'documents' },
    ],
    events: ['document.presence', 'document.saved', 'document.shared'],
    route: (type, payload) => (type === 'document.presence' || type === 'document.saved' ? [`document:${String(payload.documentId)}`] : type === 'document.shared' ? ['documents'] : []),
  }),
  footprint: documentsFootprint,
  // Sent by the notifications module, from document.shared and comment.created.
  notifications: [
    { name: 'document.shared', description: 'A document was shared with you, or your role on it changed.' },
    { name: 'comment.mention', description: 'Someone mentioned you in a comment.' },
  ],
});
