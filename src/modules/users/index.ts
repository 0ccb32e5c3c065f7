import { defineModule } from '../module.ts';
import { usersRoutes } from './routes.ts';
import { users } from './schema.ts';
import { createUsersService, type UsersService } from './service.ts';
import { usersExport } from './export.ts';
import { ERASE_QUEUE, usersEnv, usersSettings, type ErasureSettings } from './erasure.ts';

export { users } from './schema.ts';
export type { UserRow } from './schema.ts';
export { accountDisabledSql, accountOf } from './repository.ts';
export { normalizeEmail, toPublicUser, type PublicUser, type UsersService } from './service.ts';
export { displayName, userSchema } from './contracts.ts';
export type { Preferences } from './preferences.ts';
export { erasureOf, type ErasureSource } from './erasure.ts';

declare module '../../platform/bus/events.ts' {
  interface DomainEvents {
    /** A user's profile or settings changed; `fields` names what changed. */
    'user.updated': { userId: string; fields: string[] };
    /** A deleted account's rows are erased, its own row last; what lives outside the database goes now. */
    'user.deleted': { userId: string };
  }
}

declare module '../module.ts' {
  interface ServiceMap {
    users: UsersService;
  }
  interface ModuleSettings {
    /** How deleted accounts are erased. */
    users: ErasureSettings;
  }
}

/** Users: accounts, profiles and preferences. Sign-in is the auth module's. */
export const usersModule = defineModule({
  name: 'users',
  exports: ({ deps }) => usersExport(deps.db),
  tables: { users },
  config: { env: usersEnv, read: usersSettings },
  provides: ['users'],
  services: ({ deps, config, erasureSources }) => ({
    users: createUsersService(deps.db, { announce: deps.announce, broadcast: deps.broadcast, logger: deps.logger, queue: deps.queue, erasureSources, erasure: config.users }),
  }),
  routes: usersRoutes,
  // A deleted account's rows, erased a batch at a time (erasure.ts); system work, so the job outlives the account.
  // Nothing queues an erasure again: an admin cannot discard one before it completed (mustRun).
  jobs: ({ services }) => [{ queue: ERASE_QUEUE, handler: (data: { userId: string }, ctx) => services.users.erase(data, ctx), options: { timeoutMs: 10 * 60_000, mustRun: true } }],
  topics: () => ({
    topics: [{ name: 'user', scope: 'profile:read' }],
    events: ['user.updated'],
    route: (type) => (type === 'user.updated' ? ['user'] : []),
  }),
});
