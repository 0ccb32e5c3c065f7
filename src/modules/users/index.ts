import { defineModule } from '../module.ts';
import { usersRoutes } from './routes.ts';
import { users } from './schema.ts';
import { createUsersService, type UsersService } from './service.ts';
import { usersExport } from './export.ts';

export { users } from './schema.ts';
export type { UserRow } from './schema.ts';
export { accountOf } from './repository.ts';
export { normalizeEmail, toPublicUser, type PublicUser, type UsersService } from './service.ts';
export { displayName, userSchema } from './contracts.ts';
export type { Preferences } from './preferences.ts';

declare module '../../platform/bus/events.ts' {
  interface DomainEvents {
    /** A user's profile or settings changed; `fields` names what changed. */
    'user.updated': { userId: string; fields: string[] };
    /** An account was deleted (its rows went with it, through foreign keys); what lives outside the database goes now. */
    'user.deleted': { userId: string };
  }
}

declare module '../module.ts' {
  interface ServiceMap {
    users: UsersService;
  }
}

/** Users: accounts, profiles and preferences. Sign-in is the auth module's. */
export const usersModule = defineModule({
  name: 'users',
  exports: ({ deps }) => usersExport(deps.db),
  tables: { users },
  provides: ['users'],
  services: ({ deps }) => ({ users: createUsersService(deps.db, { announce: deps.announce, broadcast: deps.broadcast, logger: deps.logger }) }),
  routes: usersRoutes,
  topics: () => ({
    topics: [{ name: 'user', scope: 'profile:read' }],
    events: ['user.updated'],
    route: (type) => (type === 'user.updated' ? ['user'] : []),
  }),
});
