import { z } from 'zod';
import { pageQuery } from '../../http/pagination.ts';
import { BAN_KINDS, type BanRow } from './schema.ts';

const kind = z.enum(BAN_KINDS).describe('user: a user id; api_key: an API key id; ip: an IPv4 or IPv6 address (an IPv6 one stands for its /64)');

export const bansQuery = pageQuery.extend({
  active: z
    .enum(['true', 'false'])
    .transform((v) => v === 'true')
    .optional()
    .describe('true: bans in force now; false: lifted or expired ones; absent: all'),
  kind: kind.optional(),
  subject: z.string().trim().min(1).max(100).optional().describe('An exact user id, API key id or IP address'),
});

export const createBanBody = z
  .object({
    kind,
    subject: z.string().trim().min(1).max(100),
    seconds: z.number().int().positive().max(365 * 24 * 3600).describe('How long the ban lasts'),
    reason: z.string().trim().min(1).max(500),
  })
  .strict();

export const banSchema = z
  .object({
    id: z.uuid(),
    kind,
    subject: z.string(),
    reason: z.string(),
    violations: z.number().int().describe('Violations counted when it was set automatically; 0 when set by an admin'),
    active: z.boolean().describe('In force now: neither lifted nor expired'),
    createdAt: z.iso.datetime(),
    expiresAt: z.iso.datetime(),
    liftedAt: z.iso.datetime().nullable(),
    liftedBy: z.uuid().nullable(),
  })
  .meta({ id: 'Ban' });

export const toBan = (b: BanRow): z.infer<typeof banSchema> => ({
  id: b.id,
  kind: b.kind,
  subject: b.subject,
  reason: b.reason,
  violations: b.violations,
  active: !b.liftedAt && b.expiresAt.getTime() > Date.now(),
  createdAt: b.createdAt.toISOString(),
  expiresAt: b.expiresAt.toISOString(),
  liftedAt: b.liftedAt?.toISOString() ?? null,
  liftedBy: b.liftedBy,
});
