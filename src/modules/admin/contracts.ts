import { z } from 'zod';
import { pageQuery } from '../../http/pagination.ts';

const role = z.enum(['user', 'admin']);

export const adminUsersQuery = pageQuery.extend({
  email: z.string().trim().min(1).max(320).optional().describe('Part of the email address, case-insensitive'),
  role: role.optional(),
});

export const setRoleBody = z.object({ role }).strict();

export const auditQuery = pageQuery.extend({
  userId: z.uuid().optional(),
  action: z.string().min(1).max(100).optional().describe('An exact action, e.g. user.signed_in'),
});

export const auditEntrySchema = z
  .object({
    id: z.uuid(),
    userId: z.uuid().nullable(),
    actorId: z.uuid().nullable(),
    action: z.string(),
    ip: z.string().nullable(),
    userAgent: z.string().nullable(),
    metadata: z.record(z.string(), z.unknown()),
    createdAt: z.iso.datetime(),
  })
  .meta({ id: 'AuditEntry' });

export const outboxQuery = pageQuery.extend({ to: z.string().trim().min(1).max(320).optional().describe('Exact recipient address') });

export const outboxMessageSchema = z
  .object({
    id: z.uuid(),
    to: z.string(),
    subject: z.string(),
    text: z.string(),
    html: z.string().nullable(),
    transport: z.enum(['outbox', 'smtp']),
    sentAt: z.iso.datetime().nullable(),
    error: z.string().nullable(),
    createdAt: z.iso.datetime(),
  })
  .meta({ id: 'OutboxMessage' });
