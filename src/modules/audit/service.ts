import { and, desc, eq, lt, type SQL } from 'drizzle-orm';
import type { Db } from '../../platform/db/database.ts';
import { auditLog } from './schema.ts';

export type AuditAction =
  | 'user.registered'
  | 'user.signed_in'
  | 'user.sign_in_failed'
  | 'user.signed_out'
  | 'user.deleted'
  | 'user.disabled'
  | 'user.enabled'
  | 'user.role_changed'
  | 'user.email_verified'
  | 'password.changed'
  | 'password.reset_requested'
  | 'password.reset'
  | 'mfa.enabled'
  | 'mfa.disabled'
  | 'mfa.backup_codes_regenerated'
  | 'mfa.failed'
  | 'api_key.created'
  | 'api_key.deleted'
  | 'session.revoked'
  | 'session.refresh_reuse_detected'
  | 'oauth.linked'
  | 'ban.created'
  | 'ban.lifted'
  | 'content.flagged';

export interface AuditContext {
  ip?: string;
  userAgent?: string;
}

export interface AuditEntry extends AuditContext {
  action: AuditAction;
  userId?: string | null;
  actorId?: string | null;
  metadata?: Record<string, unknown>;
}

export function createAudit(db: Db) {
  return {
    async record(entry: AuditEntry, tx: Db = db): Promise<void> {
      await tx.insert(auditLog).values({
        action: entry.action,
        userId: entry.userId ?? null,
        // No actor given: the user acted themselves. An explicit null: the system did (an automatic ban).
        actorId: entry.actorId === undefined ? (entry.userId ?? null) : entry.actorId,
        ip: entry.ip ?? null,
        userAgent: entry.userAgent ?? null,
        metadata: entry.metadata ?? {},
      });
    },

    async list(opts: { limit: number; cursor?: string; userId?: string; action?: string }) {
      const where: SQL[] = [];
      if (opts.cursor) where.push(lt(auditLog.id, opts.cursor));
      if (opts.userId) where.push(eq(auditLog.userId, opts.userId));
      if (opts.action) where.push(eq(auditLog.action, opts.action));
      return db.select().from(auditLog).where(and(...where)).orderBy(desc(auditLog.id)).limit(opts.limit);
    },
  };
}

export type Audit = ReturnType<typeof createAudit>;
