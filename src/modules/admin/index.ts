import { createOutbox } from '../../platform/mail/outbox.ts';
import { defineModule } from '../module.ts';
import { adminRoutes } from './routes.ts';
import { createAdmin, type Admin } from './service.ts';

declare module '../module.ts' {
  interface ServiceMap {
    /** Operator actions on accounts, the audit log and the mail outbox. */
    admin: Admin;
  }
}

/** Admin: users (list, disable, role), the audit log and the mail outbox, for role `admin` only. */
export const adminModule = defineModule({
  name: 'admin',
  needs: ['users', 'sessions', 'audit', 'apiKeys'],
  provides: ['admin'],
  services: ({ deps, services }) => ({
    admin: createAdmin({ db: deps.db, users: services.users, sessions: services.sessions, audit: services.audit, outbox: createOutbox(deps.db), credentialsChanged: services.apiKeys.forgetUser, queue: deps.queue }),
  }),
  routes: adminRoutes,
});
