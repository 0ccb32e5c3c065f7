import { principal, requestContext } from '../../http/guards.ts';
import { idParam, page, toPage } from '../../http/pagination.ts';
import { problemSchema } from '../../http/problem.ts';
import type { App } from '../../http/types.ts';
import type { RouteContext } from '../module.ts';
import type { OutboxRow } from '../../platform/mail/outbox.ts';
import type { AuditRow } from '../audit/index.ts';
import { toPublicUser, userSchema } from '../users/index.ts';
import { adminUsersQuery, auditEntrySchema, auditQuery, outboxMessageSchema, outboxQuery, setRoleBody } from './contracts.ts';

const problems = { 400: problemSchema, 401: problemSchema, 403: problemSchema };
const tags = ['admin'];

const toAuditEntry = (e: AuditRow) => ({ ...e, createdAt: e.createdAt.toISOString() });
const toOutboxMessage = (m: OutboxRow) => ({ ...m, sentAt: m.sentAt?.toISOString() ?? null, createdAt: m.createdAt.toISOString() });

/** Administrators only, and only with a session: API keys are refused here whatever their scopes. */
export function adminRoutes(app: App, { services, guards }: RouteContext<'admin'>) {
  const { admin } = services;
  const onRequest = guards.admin();

  app.get('/admin/users', {
    schema: { tags, summary: 'List users', querystring: adminUsersQuery, response: { 200: page(userSchema), ...problems } },
    onRequest,
    handler: async (request) => {
      const { limit, ...filters } = request.query;
      return toPage(await admin.listUsers({ ...filters, limit: limit + 1 }), limit, toPublicUser);
    },
  });

  app.get('/admin/users/:id', {
    schema: { tags, summary: 'One user', params: idParam, response: { 200: userSchema, 404: problemSchema, ...problems } },
    onRequest,
    handler: async (request) => toPublicUser(await admin.getUser(request.params.id)),
  });

  app.post('/admin/users/:id/disable', {
    schema: {
      tags,
      summary: 'Disable a user',
      description: 'Revokes every session at once; the user\'s API keys stop working too.',
      params: idParam,
      response: { 200: userSchema, 404: problemSchema, 409: problemSchema, ...problems },
    },
    onRequest,
    handler: async (request) => toPublicUser(await admin.disable(principal(request).userId, request.params.id, requestContext(request))),
  });

  app.post('/admin/users/:id/enable', {
    schema: { tags, summary: 'Re-enable a disabled user', params: idParam, response: { 200: userSchema, 404: problemSchema, ...problems } },
    onRequest,
    handler: async (request) => toPublicUser(await admin.enable(principal(request).userId, request.params.id, requestContext(request))),
  });

  app.patch('/admin/users/:id', {
    schema: { tags, summary: 'Change a user\'s role', params: idParam, body: setRoleBody, response: { 200: userSchema, 404: problemSchema, 409: problemSchema, ...problems } },
    onRequest,
    handler: async (request) =>
      toPublicUser(await admin.setRole(principal(request).userId, request.params.id, request.body.role, requestContext(request))),
  });

  app.get('/admin/audit', {
    schema: { tags, summary: 'The audit log, newest first', querystring: auditQuery, response: { 200: page(auditEntrySchema), ...problems } },
    onRequest,
    handler: async (request) => {
      const { limit, ...filters } = request.query;
      return toPage(await admin.listAudit({ ...filters, limit: limit + 1 }), limit, toAuditEntry);
    },
  });

  app.get('/admin/outbox', {
    schema: { tags, summary: 'Sent mail, newest first (where mail goes without SMTP)', querystring: outboxQuery, response: { 200: page(outboxMessageSchema), ...problems } },
    onRequest,
    handler: async (request) => {
      const { limit, ...filters } = request.query;
      return toPage(await admin.listOutbox({ ...filters, limit: limit + 1 }), limit, toOutboxMessage);
    },
  });
}
