import { z } from 'zod';
import { principal } from '../../http/guards.ts';
import { idempotencyHeaders, idempotencyOf } from '../../http/idempotency.ts';
import { optionalBody, page, toPage } from '../../http/pagination.ts';
import { problemSchema } from '../../http/problem.ts';
import type { App } from '../../http/types.ts';
import type { RouteContext } from '../module.ts';
import {
  attachBody,
  attachmentParams,
  attachmentSchema,
  createDocumentBody,
  diffQuery,
  diffSchema,
  documentParams,
  documentSchema,
  documentsQuery,
  documentSummarySchema,
  favoriteBody,
  recentQuery,
  restoreBody,
  saveDocumentBody,
  updateDocumentBody,
  versionParams,
  versionSchema,
  versionsQuery,
  versionSummarySchema,
} from './contracts.ts';
import { toAttachment, toDocument, toSummary, toVersion, toVersionSummary } from './responses.ts';

export const problems = { 400: problemSchema, 401: problemSchema, 403: problemSchema, 404: problemSchema };
export const tags = ['documents'];
export const me = (request: Parameters<typeof principal>[0]) => principal(request).userId;

/** Documents, their versions and attachments. API keys need the `documents` scope. */
export function documentsRoutes(app: App, { services, guards, config, idempotency }: RouteContext<'documents' | 'documentActions'>) {
  const { documents } = services;
  const onRequest = guards.user({ scope: 'documents' });
  // A body at the size limit, JSON-escaped (newlines and quotes double), still reaches the service, which answers 413 past the limit.
  const bodyLimit = 2 * config.documents.maxBytes + 64 * 1024;
  const tooLarge = { 413: problemSchema };

  app.post('/documents', {
    schema: {
      tags,
      summary: 'Create a document',
      description:
        'From scratch, or from a template (`templateId`). Version 1 is this content. A retry with the same `Idempotency-Key` answers with the document the first one created. A user who owns `DOCUMENTS_MAX_PER_USER` documents already (default 10000; archived ones and templates count) is 409 `document_limit`.',
      headers: idempotencyHeaders,
      body: createDocumentBody,
      response: { 201: documentSchema, 409: problemSchema, ...problems, ...tooLarge },
    },
    bodyLimit,
    onRequest,
    handler: async (request, reply) => {
      const userId = me(request);
      const { resourceId } = await idempotency.once(idempotencyOf(request, userId, { body: request.body }), async () => (await documents.create(userId, request.body)).doc.id);
      return reply.status(201).send(toDocument(await documents.view(userId, resourceId)));
    },
  });

  app.get('/documents', {
    schema: { tags, summary: 'Your documents and those shared with you, newest first', querystring: documentsQuery, response: { 200: page(documentSummarySchema), ...problems } },
    onRequest,
    handler: async (request) => {
      const { limit, cursor, ...filter } = request.query;
      const rows = await documents.list(me(request), { ...filter, limit: limit + 1, cursor });
      return toPage(rows.map((r) => ({ ...r, id: r.doc.id })), limit, toSummary);
    },
  });

  app.get('/documents/recent', {
    schema: { tags, summary: 'What you opened last, most recent first', querystring: recentQuery, response: { 200: z.object({ data: z.array(documentSummarySchema) }), ...problems } },
    onRequest,
    handler: async (request) => ({ data: (await documents.recent(me(request), request.query.limit)).map(toSummary) }),
  });

  app.get('/documents/:id', {
    schema: { tags, summary: 'One document (it goes to the top of your recents)', params: documentParams, response: { 200: documentSchema, ...problems } },
    onRequest,
    handler: async (request) => toDocument(await documents.get(me(request), request.params.id)),
  });

  app.put('/documents/:id', {
    schema: {
      tags,
      summary: 'Save: a new version',
      description: 'Editors and the owner. `baseVersion` is the version the edit started from; if the document moved on since, 409 `version_conflict` with `currentVersion` (number, title, body), and nothing is written.',
      params: documentParams,
      body: saveDocumentBody,
      response: { 200: documentSchema, 409: problemSchema, ...problems, ...tooLarge },
    },
    bodyLimit,
    onRequest,
    handler: async (request) => toDocument(await documents.save(me(request), request.params.id, request.body)),
  });

  app.patch('/documents/:id', {
    schema: {
      tags,
      summary: 'Tags, archive; template flag and project (owner)',
      description: 'Not versioned. Editors may change tags and archive; only the owner makes it a template or moves it to a project.',
      params: documentParams,
      body: updateDocumentBody,
      response: { 200: documentSchema, ...problems },
    },
    onRequest,
    handler: async (request) => toDocument(await documents.update(me(request), request.params.id, request.body)),
  });

  app.put('/documents/:id/favorite', {
    schema: { tags, summary: 'Mark or unmark it a favorite of yours', params: documentParams, body: favoriteBody, response: { 200: documentSummarySchema, ...problems } },
    onRequest,
    handler: async (request) => toSummary(await documents.setFavorite(me(request), request.params.id, request.body.favorite)),
  });

  app.delete('/documents/:id', {
    schema: { tags, summary: 'Delete a document with its versions, comments and shares (owner)', params: documentParams, response: { 204: z.null(), ...problems } },
    onRequest,
    handler: async (request, reply) => {
      await documents.delete(me(request), request.params.id);
      return reply.status(204).send(null);
    },
  });

  app.get('/documents/:id/versions', {
    schema: {
      tags,
      summary: 'Versions, newest first (without bodies)',
      description: 'The newest `DOCUMENTS_MAX_VERSIONS` (default 500, the current one included): a save past it deletes the oldest; reading, diffing or restoring one no longer kept is 404 `version_not_found`.',
      params: documentParams,
      querystring: versionsQuery,
      response: { 200: page(versionSummarySchema), ...problems },
    },
    onRequest,
    handler: async (request) => {
      const { limit, cursor } = request.query;
      const rows = await documents.versions(me(request), request.params.id, { limit: limit + 1, before: cursor });
      const more = rows.length > limit;
      const items = more ? rows.slice(0, limit) : rows;
      return { data: items.map(toVersionSummary), nextCursor: more ? Buffer.from(String(items.at(-1)!.number)).toString('base64url') : null };
    },
  });

  app.get('/documents/:id/versions/:number', {
    schema: { tags, summary: 'One version', params: versionParams, response: { 200: versionSchema, ...problems } },
    onRequest,
    handler: async (request) => toVersion(await documents.version(me(request), request.params.id, request.params.number)),
  });

  app.get('/documents/:id/diff', {
    schema: { tags, summary: 'What changed between two versions: a unified line diff of the bodies', params: documentParams, querystring: diffQuery, response: { 200: diffSchema, ...problems } },
    onRequest,
    handler: async (request) => documents.diff(me(request), request.params.id, request.query.from, request.query.to),
  });

  app.post('/documents/:id/versions/:number/restore', {
    schema: {
      tags,
      summary: 'Restore a version: a new version with its title and body',
      params: versionParams,
      body: optionalBody(restoreBody),
      response: { 200: documentSchema, 409: problemSchema, ...problems, ...tooLarge },
    },
    onRequest,
    handler: async (request) => toDocument(await documents.restore(me(request), request.params.id, request.params.number, request.body?.baseVersion)),
  });

  app.get('/documents/:id/attachments', {
    schema: { tags, summary: "The document's attachments", params: documentParams, response: { 200: z.object({ data: z.array(attachmentSchema) }), ...problems } },
    onRequest,
    handler: async (request) => ({ data: (await documents.attachments(me(request), request.params.id)).map(toAttachment) }),
  });

  app.get('/documents/:id/attachments/:attachmentId/content', {
    schema: {
      tags,
      summary: "An attachment's bytes, for any reader",
      description:
        "A 302 to a signed link to the file's bytes (`/v1/files/{fileId}/content?expires=…&signature=…`, valid 5 minutes): the file is the attaching editor's, whose own download route serves no one else. " +
        '404 `attachment_not_found`, or `file_not_found` once the file is deleted.',
      params: attachmentParams,
      response: { 302: z.null(), ...problems },
    },
    onRequest,
    handler: async (request, reply) => {
      const path = await documents.attachmentUrl(me(request), request.params.id, request.params.attachmentId);
      return reply.header('cache-control', 'private, no-store').redirect(path, 302);
    },
  });

  app.post('/documents/:id/attachments', {
    schema: { tags, summary: 'Attach one of your files (editors)', params: documentParams, body: attachBody, response: { 201: attachmentSchema, 409: problemSchema, ...problems } },
    onRequest,
    handler: async (request, reply) => reply.status(201).send(toAttachment(await documents.attach(me(request), request.params.id, request.body.fileId))),
  });

  app.delete('/documents/:id/attachments/:attachmentId', {
    schema: { tags, summary: 'Remove an attachment (the file stays)', params: attachmentParams, response: { 204: z.null(), ...problems } },
    onRequest,
    handler: async (request, reply) => {
      await documents.detach(me(request), request.params.id, request.params.attachmentId);
      return reply.status(204).send(null);
    },
  });

  for (const action of ['summarize', 'suggest-tags'] as const) {
    app.post(`/documents/:id/${action}`, {
      schema: {
        tags: ['documents'],
        summary: action === 'summarize' ? 'Summarize a document (a queued job)' : 'Suggest tags for a document (a queued job)',
        description:
          'Runs through the model chain (`model`, else your `defaultModel`, else DEFAULT_MODEL), held to budgets and metered as source `document`. ' +
          `202 with the job; its result (\`GET /v1/jobs/{id}\`, or \`job.progress\` on the \`job:<id>\` topic) is ${action === 'summarize' ? '`{summary}`' : '`{tags}` (not applied: PATCH them if you like them)'}. Viewer.`,
        params: z.object({ id: z.uuid() }),
        body: optionalBody(z.object({ model: z.string().min(3).max(200).optional() }).strict()),
        response: { 202: z.object({ jobId: z.uuid(), state: z.string() }), ...{ 400: problemSchema, 401: problemSchema, 403: problemSchema, 404: problemSchema } },
      },
      onRequest,
      handler: async (request, reply) => {
        const caller = principal(request);
        const job = await services.documentActions.start(caller.userId, request.params.id, action, { model: request.body.model, apiKeyId: caller.apiKeyId ?? null });
        return reply.status(202).send({ jobId: job.id, state: job.state });
      },
    });
  }
}
