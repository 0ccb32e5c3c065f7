import { NotFound } from '../../errors.ts';
import { defineModule } from '../module.ts';
import { filesFootprint } from './footprint.ts';
import { createImages, type Images } from './images.ts';
import { createFileJobs } from './jobs.ts';
import { filesRoutes } from './routes.ts';
import { fileQuotas, files, fileUsage } from './schema.ts';
import { createFiles, type Files } from './service.ts';
import { fileSettings, filesEnv, type FileSettings } from './settings.ts';
import { createResumableUploads, type ResumableUploads } from './tus.ts';
import { filesExport } from './export.ts';
import { filesErasure } from './erasure.ts';

export type { Files } from './service.ts';
export type { Images } from './images.ts';
export { MAX_TEXT_CHARS } from './extract.ts';

declare module '../../platform/bus/events.ts' {
  interface DomainEvents {
    /** A file was stored (all of it, typed and hashed). */
    'file.created': { userId: string; fileId: string; name: string; mimeType: string; size: number };
    /** A file was deleted (its row; a queued job removes its blobs). */
    'file.deleted': { userId: string; fileId: string };
    /** The thumbnail job read this share of the original. */
    'file.thumbnail.progress': { userId: string; fileId: string; jobId: string; percent: number };
    /** The thumbnail is made (`GET /v1/files/{id}/thumbnail`); its size in pixels. */
    'file.thumbnail.ready': { userId: string; fileId: string; width: number; height: number };
    /** No thumbnail could be made (`code`: image_unreadable, image_too_large, …). */
    'file.thumbnail.failed': { userId: string; fileId: string; code: string };
  }
}

declare module '../module.ts' {
  interface ServiceMap {
    files: Files;
    /** Unfinished resumable (tus) uploads: where they are kept, how they are locked across instances, their expiry. */
    resumableUploads: ResumableUploads;
    /** Thumbnails and on-demand variants of images (sharp). */
    images: Images;
  }
  interface ModuleSettings {
    /** Upload size limit, per-user quota, accepted types. */
    files: FileSettings;
  }
}

/**
 * Files: uploads streamed to disk or S3 (in one request, or resumable over tus), typed by their bytes, hashed,
 * within a size limit and each user's quota; downloads with ranges; thumbnails of images made by a queued job;
 * resized and converted variants made on demand and kept; blobs of deleted files removed by a retried job.
 */
export const filesModule = defineModule({
  name: 'files',
  erasure: ({ deps }) => filesErasure(deps.db, deps.announce),
  exports: ({ deps }) => filesExport(deps.db, deps.storage),
  tables: { files, fileQuotas, fileUsage },
  config: { env: filesEnv, read: fileSettings },
  needs: ['projects', 'users', 'jobs'],
  // Uploads may name a conversation (chat builds after files: its answers read them); a processed file is told to its owner.
  uses: ['conversations', 'notifications'],
  provides: ['files', 'resumableUploads', 'images'],
  services: ({ deps, config, services }) => {
    const images = createImages({ storage: deps.storage, maxPixels: config.files.maxImagePixels, maxVariants: config.files.maxVariants });
    const files = createFiles({ db: deps.db, announce: deps.announce, signer: deps.signer('files.url'), storage: deps.storage, settings: config.files, projects: services.projects, users: services.users, jobs: services.jobs, images, logger: deps.logger });
    const resumableUploads = createResumableUploads({ storage: deps.storage, redis: deps.redis, redisPrefix: config.redisPrefix, broadcast: deps.broadcast, settings: config.files, logger: deps.logger });
    return { files, images, resumableUploads };
  },
  jobs: ({ deps, services }) => createFileJobs({ db: deps.db, storage: deps.storage, images: services.images, announce: deps.announce, logger: deps.logger }),
  routes: filesRoutes,
  // Resumable uploads left unfinished past FILES_UPLOAD_EXPIRY_SECONDS.
  schedules: ({ services }) => [{ name: 'files.expire-uploads', cron: '41 * * * *', handler: async () => ({ removed: await services.resumableUploads.expire() }) }],
  // A deleted account's rows went with it (foreign keys); its blobs go here, retried by the bus until they are gone.
  subscriptions: ({ services }) => [
    { group: 'files', types: ['user.deleted'], handler: (event) => services.files.forgetUser(event.payload.userId) },
    // Only files still being processed after their upload answered notify (an image, once its thumbnail job
    // ended, made or not): any other upload's own 201 already said it was ready, and a notification per
    // upload would be noise.
    {
      group: 'files.notify',
      types: ['file.thumbnail.ready', 'file.thumbnail.failed'],
      async handler(event) {
        if (event.type !== 'file.thumbnail.ready' && event.type !== 'file.thumbnail.failed') return;
        const { userId, fileId } = event.payload;
        const file = await services.files.get(userId, fileId).catch(() => undefined);
        if (!file) return; // deleted meanwhile
        const thumbnail = event.type === 'file.thumbnail.ready';
        await services.notifications.notify({
          userId,
          category: 'file.ready',
          title: `"${file.name}" is ready`,
          body: thumbnail ? `"${file.name}" is processed and its thumbnail is made.` : `"${file.name}" is stored, but no thumbnail could be made of it.`,
          link: `/files/${fileId}`,
          data: { fileId, name: file.name, mimeType: file.mimeType, size: file.size, thumbnail: thumbnail ? 'ready' : 'failed' },
          priority: 'low',
          sourceKey: event.id,
        });
      },
    },
  ],
  footprint: filesFootprint,
  notifications: [{ name: 'file.ready', description: 'A file you uploaded finished processing (an image once its thumbnail is made).', channels: { inApp: true, email: false } }],
  topics: ({ files }) => ({
    topics: [
      {
        name: 'file',
        withId: true,
        scope: 'files',
        async authorize(p, id) {
          await files.get(p.userId, id).catch(() => {
            throw NotFound('File');
          });
        },
      },
      { name: 'files', scope: 'files' },
    ],
    events: ['file.created', 'file.deleted', 'file.thumbnail.progress', 'file.thumbnail.ready', 'file.thumbnail.failed'],
    route: (type, payload) => (type.startsWith('file.') ? [`file:${String(payload.fileId)}`, 'files'] : []),
  }),
});
