import { z } from 'zod';
import { noStore } from '../../http/guards.ts';
import { page, pageQuery, toPage } from '../../http/pagination.ts';
import { problemSchema } from '../../http/problem.ts';
import type { App } from '../../http/types.ts';
import type { RouteContext } from '../module.ts';
import {
  documentParams,
  documentSchema,
  linkBody,
  linkParams,
  linkSchema,
  newLinkSchema,
  shareBody,
  shareCursor,
  shareParams,
  shareRoleBody,
  shareSchema,
  sharesQuery,
  shareTokenHeaders,
} from './contracts.ts';
import { toDocument, toLink, toShare } from './responses.ts';
import { me, problems, tags } from './routes.ts';

const gone = { 410: problemSchema };

/** Sharing with users and by link (the owner), and reading through a link (anyone signed in who holds it). */
export function sharingRoutes(app: App, { services, guards }: RouteContext<'documents' | 'documentSharing'>) {
  const { documents, documentSharing: sharing } = services;
  const onRequest = guards.user({ scope: 'documents' });

  app.get('/documents/:id/shares', {
    schema: { tags, summary: 'Who the document is shared with, oldest share first (owner)', params: documentParams, querystring: sharesQuery, response: { 200: page(shareSchema), ...problems } },
    onRequest,
    handler: async (request) => {
      const { limit, cursor } = request.query;
      const rows = await sharing.list(me(request), request.params.id, { limit: limit + 1, after: cursor });
      const items = rows.slice(0, limit);
      return { data: items.map(toShare), nextCursor: rows.length > limit ? shareCursor(items.at(-1)!.position) : null };
    },
  });

  app.post('/documents/:id/shares', {
    schema: {
      tags,
      summary: 'Share with a user by email, or change their role (owner)',
      description: '201 for a new reader, 200 when their role changed. 404 `user_not_found` when no account has that email; 400 `cannot_share_with_self` for your own.',
      params: documentParams,
      body: shareBody,
      response: { 200: shareSchema, 201: shareSchema, ...problems },
    },
    onRequest,
    handler: async (request, reply) => {
      const { share, created } = await sharing.share(me(request), request.params.id, request.body);
      return reply.status(created ? 201 : 200).send(toShare(share));
    },
  });

  app.patch('/documents/:id/shares/:userId', {
    schema: { tags, summary: "Change a reader's role (owner)", params: shareParams, body: shareRoleBody, response: { 200: shareSchema, ...problems } },
    onRequest,
    handler: async (request) => toShare(await sharing.setRole(me(request), request.params.id, request.params.userId, request.body.role)),
  });

  app.delete('/documents/:id/shares/:userId', {
    schema: { tags, summary: 'Stop sharing with a user (owner), or leave a document shared with you', params: shareParams, response: { 204: z.null(), ...problems } },
    onRequest,
    handler: async (request, reply) => {
      await sharing.unshare(me(request), request.params.id, request.params.userId);
      return reply.status(204).send(null);
    },
  });

  app.post('/documents/:id/links', {
    schema: {
      tags,
      summary: 'Create a share link (owner)',
      description:
        'The token is shown once. Whoever holds it, signed in, reads the document (and comments, for a `commenter` link) at `/v1/documents/shared`, sending it as `X-Share-Token`. A document with `DOCUMENTS_MAX_LINKS_PER_DOCUMENT` links that still open it (default 100; revoked and expired ones do not count) is 409 `link_limit`.',
      params: documentParams,
      body: linkBody,
      response: { 201: newLinkSchema, 409: problemSchema, ...problems },
    },
    onRequest,
    handler: async (request, reply) => {
      const link = await sharing.createLink(me(request), request.params.id, request.body);
      return reply.status(201).send({ ...toLink(link), token: link.token });
    },
  });

  app.get('/documents/:id/links', {
    schema: {
      tags,
      summary: 'Share links, revoked and expired ones included (owner)',
      description:
        'Oldest first, cursor-paginated (`limit`, default 20, at most 100; `nextCursor`). A link that ended (revoked or expired) over `DOCUMENTS_LINK_HISTORY_DAYS` days ago (default 30) is no longer listed: the daily `documents.purge-links` deletes it.',
      params: documentParams,
      querystring: pageQuery,
      response: { 200: page(linkSchema), ...problems },
    },
    onRequest,
    handler: async (request) => {
      const { limit, cursor } = request.query;
      return toPage(await sharing.links(me(request), request.params.id, { limit: limit + 1, after: cursor }), limit, toLink);
    },
  });

  app.delete('/documents/:id/links/:linkId', {
    schema: { tags, summary: 'Revoke a share link (owner)', params: linkParams, response: { 204: z.null(), ...problems } },
    onRequest,
    handler: async (request, reply) => {
      await sharing.revokeLink(me(request), request.params.id, request.params.linkId);
      return reply.status(204).send(null);
    },
  });

  app.get('/documents/shared', {
    schema: {
      tags,
      summary: 'Read a document through a share link',
      description: 'The link\'s token in `X-Share-Token`. 404 for a token never issued, 410 `link_revoked` or `link_expired`. `role` is the link\'s.',
      headers: shareTokenHeaders,
      response: { 200: documentSchema, ...problems, ...gone },
    },
    // The token is a header: a browser would otherwise keep one link's answer (a 410) for the next link it opens.
    onRequest: [noStore, onRequest],
    handler: async (request) => {
      const grant = await documents.access.forLink(me(request), request.headers['x-share-token']);
      return toDocument({ doc: grant.doc, role: grant.role, favorite: false, lastViewedAt: null });
    },
  });
}
