import type { FastifyRequest } from 'fastify';
import { z } from 'zod';
import { idempotencyHeaders, idempotencyOf } from '../../http/idempotency.ts';
import { page, toPage } from '../../http/pagination.ts';
import { problemSchema } from '../../http/problem.ts';
import type { App } from '../../http/types.ts';
import type { RouteContext } from '../module.ts';
import type { Grant } from './access.ts';
import { commentBody, commentParams, commentSchema, commentsQuery, documentParams, editCommentBody, shareTokenHeaders } from './contracts.ts';
import { toComment } from './responses.ts';
import { LIMITS } from './settings.ts';
import { me, problems, tags } from './routes.ts';

/**
 * Comment threads, as a reader (`/documents/{id}/comments`) or through a share
 * link (`/documents/shared/comments`, the token in `X-Share-Token`): the same
 * rules, checked by the comments service against the grant either way.
 */
export function commentRoutes(app: App, { services, guards, idempotency }: RouteContext<'documents' | 'documentComments'>) {
  const { documents, documentComments: comments } = services;
  const onRequest = guards.user({ scope: 'documents' });
  const byReader = (request: FastifyRequest<{ Params: { id: string } }>) => documents.access.forUser(me(request), request.params.id);
  const byLink = (request: FastifyRequest) => documents.access.forLink(me(request), String(request.headers['x-share-token']));
  const responses = { ...problems, 410: problemSchema };

  const collection = (prefix: string, where: { params: z.ZodObject } | { headers: z.ZodObject }, grantOf: (request: any) => Promise<Grant>) => {
    app.get(`${prefix}/comments`, {
      schema: { tags, summary: 'Comments, oldest first (threads by parentId)', ...where, querystring: commentsQuery, response: { 200: page(commentSchema), ...responses } },
      onRequest,
      handler: async (request) => {
        const { limit, cursor, resolved } = request.query;
        return toPage(await comments.list(await grantOf(request), { limit: limit + 1, cursor, resolved }), limit, toComment);
      },
    });

    app.post(`${prefix}/comments`, {
      schema: {
        tags,
        summary: 'Start a thread on a quoted passage, or reply (commenters and above)',
        description: `Replies nest at most ${LIMITS.commentDepth} deep (deeper: 400 \`comment_too_deep\`). \`mentions\` may name only the owner and people the document is shared with (others: 400 \`mention_not_allowed\`). A document with \`DOCUMENTS_MAX_COMMENTS\` comments already (default 10000, replies included) is 409 \`comment_limit\`.`,
        ...('params' in where ? { params: where.params, headers: idempotencyHeaders } : { headers: where.headers.extend(idempotencyHeaders.shape) }),
        body: commentBody,
        response: { 201: commentSchema, 409: problemSchema, ...responses },
      },
      onRequest,
      handler: async (request, reply) => {
        const grant = await grantOf(request);
        const { resourceId } = await idempotency.once(idempotencyOf(request, grant.userId, { document: grant.doc.id, body: request.body }), async () => (await comments.create(grant, request.body)).id);
        return reply.status(201).send(toComment(await comments.get(grant, resourceId)));
      },
    });
  };
  collection('/documents/:id', { params: documentParams }, byReader);
  collection('/documents/shared', { headers: shareTokenHeaders }, byLink);

  app.patch('/documents/:id/comments/:commentId', {
    schema: { tags, summary: 'Edit your comment', params: commentParams, body: editCommentBody, response: { 200: commentSchema, ...problems } },
    onRequest,
    handler: async (request) => toComment(await comments.edit(await byReader(request), request.params.commentId, request.body.body)),
  });

  app.delete('/documents/:id/comments/:commentId', {
    schema: { tags, summary: 'Delete a comment and its replies (its author, or the owner)', params: commentParams, response: { 204: z.null(), ...problems } },
    onRequest,
    handler: async (request, reply) => {
      await comments.delete(await byReader(request), request.params.commentId);
      return reply.status(204).send(null);
    },
  });

  for (const [action, resolved] of [['resolve', true], ['reopen', false]] as const) {
    app.post(`/documents/:id/comments/:commentId/${action}`, {
      schema: { tags, summary: resolved ? 'Resolve a thread' : 'Reopen a thread', params: commentParams, response: { 200: commentSchema, ...problems } },
      onRequest,
      handler: async (request) => toComment(await comments.resolve(await byReader(request), request.params.commentId, resolved)),
    });
  }
}
