import { z } from 'zod';
import { opaqueCursor, pageQuery } from '../../http/pagination.ts';
import type { AttemptRow, EndpointRow, MessageRow } from './schema.ts';
import { previousSigning, WEBHOOK_EVENTS } from './service.ts';

const MESSAGE_ID = /^msg_[0-9a-f]{32}$/;

export const endpointSchema = z
  .object({
    id: z.uuid(),
    url: z.string(),
    description: z.string().nullable(),
    projectId: z.uuid().nullable(),
    events: z.array(z.string()),
    disabled: z.boolean(),
    disabledReason: z.string().nullable(),
    failingSince: z.string().nullable(),
    secretRotatedUntil: z
      .string()
      .nullable()
      .describe('Until then, a secret replaced by a rotation signs too (a `v1,` signature more each): the latest expiry among those still signing. Null: only the current secret signs'),
    rateLimit: z.number().int().nullable().describe('Messages a second it is sent at most; beyond it, deliveries wait. Null: no limit'),
    createdAt: z.string(),
    updatedAt: z.string(),
  })
  .meta({ id: 'WebhookEndpoint' });

export const endpointWithSecret = endpointSchema.extend({ secret: z.string().describe('`whsec_…`: shown once') }).meta({ id: 'WebhookEndpointWithSecret' });

export const messageSchema = z
  .object({ id: z.string().describe('The `webhook-id` header'), endpointId: z.uuid(), eventType: z.string(), payload: z.record(z.string(), z.unknown()), status: z.enum(['pending', 'delivered', 'failed']), createdAt: z.string() })
  .meta({ id: 'WebhookMessage' });

export const attemptSchema = z
  .object({ id: z.uuid(), attempt: z.number().int(), statusCode: z.number().int().nullable(), latencyMs: z.number().int(), responseExcerpt: z.string().nullable(), error: z.string().nullable(), createdAt: z.string() })
  .meta({ id: 'WebhookAttempt' });

/** The latest expiry among the replaced secrets that still sign. */
function rotatedUntil(e: EndpointRow): string | null {
  const until = Math.max(...previousSigning(e).map((p) => Date.parse(p.until)));
  return Number.isFinite(until) ? new Date(until).toISOString() : null;
}

export const toEndpoint = (e: EndpointRow) => ({
  id: e.id,
  url: e.url,
  description: e.description,
  projectId: e.projectId,
  events: e.events,
  disabled: e.disabledAt !== null,
  disabledReason: e.disabledReason,
  failingSince: e.failingSince?.toISOString() ?? null,
  secretRotatedUntil: rotatedUntil(e),
  rateLimit: e.rateLimit,
  createdAt: e.createdAt.toISOString(),
  updatedAt: e.updatedAt.toISOString(),
});
export const toMessage = (m: MessageRow) => ({ id: m.id, endpointId: m.endpointId, eventType: m.eventType, payload: m.payload, status: m.status, createdAt: m.createdAt.toISOString() });
export const toAttempt = (a: AttemptRow) => ({ id: a.id, attempt: a.attempt, statusCode: a.statusCode, latencyMs: a.latencyMs, responseExcerpt: a.responseExcerpt, error: a.error, createdAt: a.createdAt.toISOString() });

const url = z.string().trim().min(1).max(2000);
const events = z.array(z.enum(WEBHOOK_EVENTS)).min(1).max(WEBHOOK_EVENTS.length);
const description = z.string().trim().max(500).nullable();
const rateLimit = z.number().int().min(1).max(10_000).nullable().describe('Messages a second at most (1 to 10000); null, the default: no limit');

export const createEndpointBody = z.object({ url, events, description: description.optional(), projectId: z.uuid().nullable().optional(), rateLimit: rateLimit.optional() }).strict();
export const updateEndpointBody = z
  .object({ url: url.optional(), events: events.optional(), description: description.optional(), rateLimit: rateLimit.optional(), disabled: z.boolean().optional() })
  .strict()
  .refine((b) => Object.keys(b).length > 0, 'nothing to change');

export const endpointParams = z.object({ id: z.uuid() });
export const messageParams = z.object({ id: z.string().regex(MESSAGE_ID, 'a message id (msg_…)') });
export const messagesQuery = pageQuery.extend({ cursor: opaqueCursor((id) => (MESSAGE_ID.test(id) ? id : undefined)) });
