import { NotFound } from '../../errors.ts';
import { defineModule } from '../module.ts';
import { filesFootprint } from './footprint.ts';
import { filesRoutes } from './routes.ts';
import { fileQuotas, files } from './schema.ts';
import { createFiles, type Files } from './service.ts';
import { fileSettings, filesEnv, type FileSettings } from './settings.ts';
import { createResumableUploads, type ResumableUploads } from './tus.ts';

export type { Files } from './service.ts';

declare module '../../platform/bus/events.ts' {
  interface DomainEvents {
    /** A file was stored (all of it, typed and hashed). */
    'file.created': { userId: string; fileId: string; name: string; mimeType: string; size: number };
    /** A file and its bytes were deleted. */
    'file.deleted': { userId: string; fileId: string };
  }
}

declare module '../module.ts' {
  interface ServiceMap {
    files: Files;
    /** Unfinished resumable (tus) uploads: where they are kept, how they are locked across instances, their expiry. */
    resumableUploads: ResumableUploads;
  }
  interface ModuleSettings {
    /** Upload size limit, per-user quota, accepted types. */
    files: FileSettings;
  }
}

/**
 * Files: uploads streamed to disk or S3 (in one request, or resumable over tus), typed by their bytes, hashed,
 * within a size limit and each user's quota; downloads with ranges.
 */
export const filesModule = defineModule({
  name: 'files',
  tables: { files, fileQuotas },
  config: { env: filesEnv, read: fileSettings },
  needs: ['projects', 'users'],
  // Uploads may name a conversation (chat builds after files: its answers read them).
  uses: ['conversations'],
  provides: ['files', 'resumableUploads'],
  services: ({ deps, config, services }) => ({
    files: createFiles({ db: deps.db, announce: deps.announce, signer: deps.signer('files.url'), storage: deps.storage, settings: config.files, projects: services.projects, users: services.users, logger: deps.logger }),
    resumableUploads: createResumableUploads({ storage: deps.storage, redis: deps.redis, redisPrefix: config.redisPrefix, broadcast: deps.broadcast, settings: config.files, logger: deps.logger }),
  }),
  routes: filesRoutes,
  // Resumable uploads left unfinished past FILES_UPLOAD_EXPIRY_SECONDS.
  schedules: ({ services }) => [{ name: 'files.expire-uploads', cron: '41 * * * *', handler: async () => ({ removed: await services.resumableUploads.expire() }) }],
  // A deleted account's rows went with it (foreign keys); its blobs go here, retried by the bus until they are gone.
  subscriptions: ({ services }) => [{ group: 'files', types: ['user.deleted'], handler: (event) => services.files.forgetUser(event.payload.userId) }],
  footprint: filesFootprint,
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
    events: ['file.created', 'file.deleted'],
    route: (type, payload) => (type.startsWith('file.') ? [`file:${String(payload.fileId)}`, 'files'] : []),
  }),
});
