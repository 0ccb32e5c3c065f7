import { defineModule } from '../module.ts';
import { auditLog } from './schema.ts';
import { createAudit, type Audit } from './service.ts';

export type { Audit, AuditAction, AuditContext, AuditEntry } from './service.ts';
export type { AuditRow } from './schema.ts';

declare module '../module.ts' {
  interface ServiceMap {
    /** The append-only log of security-relevant actions. */
    audit: Audit;
  }
}

/** Audit: who did what to which account, kept after the account is gone. */
export const auditModule = defineModule({
  name: 'audit',
  tables: { auditLog },
  provides: ['audit'],
  services: ({ deps }) => ({ audit: createAudit(deps.db) }),
});
