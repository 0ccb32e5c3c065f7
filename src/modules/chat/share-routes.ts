import type { FastifyRequest } from 'fastify';
import { z } from 'zod';
import { noStore, principal, rateLimit } from '../../http/guards.ts';
import { pageQuery, page, toPage } from '../../http/pagination.ts';
import { problemSchema } from '../../http/problem.ts';
import type { App } from '../../http/types.ts';
import { clientKey } from '../../platform/net/client-address.ts';
import type { RouteContext } from '../module.ts';
import { conversationParams } from './contracts.ts';
import type { ConversationShareRow } from './schema.ts';
import { createShareBody, newShareSchema, sharedConversationSchema, shareParams, shareSchema, shareTokenHeaders } from './share-contracts.ts';

const problems = { 400: problemSchema, 401: problemSchema, 403: problemSchema, 404: problemSchema };
const tags = ['conversations'];

const iso = (d: Date | null) => d?.toISOString() ?? null;

const toShare = (s: ConversationShareRow) => ({ id: s.id, last4: s.last4, leafId: s.leafId, createdAt: s.createdAt.toISOString(), expiresAt: iso(s.expiresAt), revokedAt: iso(s.revokedAt) });

/** Share links of a conversation (its owner; API keys need the `chat` scope), and reading one (anyone holding its token). */
export function shareRoutes(app: App, { services, guards }: RouteContext<'conversationShares' | 'limits'>) {
  const { conversationShares: shares, limits } = services;
  const onRequest = guards.user({ scope: 'chat' });
  const me = (request: FastifyRequest) => principal(request).userId;
  // No sign-in, so no per-user limit or ban applies: the address is refused when banned, and counted (an IPv6 client by its /64).
  const unbannedAddress = (request: FastifyRequest) => limits.refuseBannedAddress(request);
  const byIp = (request: FastifyRequest) => clientKey(request.ip);
  // The token is a header, not part of the URL: an answer kept by a browser (a 410 is cacheable by default) would be shown for another link.

  app.post('/conversations/:id/shares', {
    schema: {
      tags,
      summary: 'Share a conversation by link: a read-only snapshot up to a message',
      description:
        "The token is shown once. Whoever holds it, signed in or not, reads the branch up to `messageId` (default: the current leaf) as it is now at `/v1/shared/conversation`, sending it as `X-Share-Token`; later messages are not shown. The message must not be an answer still being written or waiting for approvals (409 `answer_in_progress`); a conversation without messages is 409 `conversation_empty`. A conversation with `CHAT_MAX_SHARES_PER_CONVERSATION` links that still open it (default 100; revoked and expired ones do not count) is 409 `share_limit`.",
      params: conversationParams,
      body: createShareBody,
      response: { 201: newShareSchema, 409: problemSchema, ...problems },
    },
    onRequest,
    handler: async (request, reply) => {
      const { token, ...share } = await shares.create(me(request), request.params.id, request.body ?? {});
      const { revokedAt: _revoked, ...shown } = toShare(share);
      return reply.status(201).send({ ...shown, token });
    },
  });

  app.get('/conversations/:id/shares', {
    schema: {
      tags,
      summary: "A conversation's share links, revoked and expired ones included",
      description:
        'Oldest first, cursor-paginated (`limit`, default 20, at most 100; `nextCursor`). A link that ended (revoked or expired) over `CHAT_SHARE_HISTORY_DAYS` days ago (default 30) is no longer listed: the daily `chat.purge-shares` deletes it.',
      params: conversationParams,
      querystring: pageQuery,
      response: { 200: page(shareSchema), ...problems },
    },
    onRequest,
    handler: async (request) => {
      const { limit, cursor } = request.query;
      return toPage(await shares.list(me(request), request.params.id, { limit: limit + 1, after: cursor }), limit, toShare);
    },
  });

  app.delete('/conversations/:id/shares/:shareId', {
    schema: { tags, summary: 'Revoke a share link: its token then answers 410 `link_revoked`', params: shareParams, response: { 204: z.null(), ...problems } },
    onRequest,
    handler: async (request, reply) => {
      await shares.revoke(me(request), request.params.id, request.params.shareId);
      return reply.status(204).send(null);
    },
  });

  app.get('/shared/conversation', {
    schema: {
      security: [],
      tags,
      summary: 'Read a conversation shared by link (no sign-in needed)',
      description:
        "The link's token in `X-Share-Token`. The branch up to the message the link was made at: what was asked and answered, the files by name; no tool steps, sources, costs or models. 404 `link_not_found` for a token never issued (or its conversation deleted), 410 `link_revoked` or `link_expired`. Counted per client address (`CHAT_SHARE_READS_PER_MINUTE`, 429 past it); a banned address is refused (403 `banned`).",
      headers: shareTokenHeaders,
      response: { 200: sharedConversationSchema, 400: problemSchema, 403: problemSchema, 404: problemSchema, 410: problemSchema, 429: problemSchema },
    },
    onRequest: [noStore, unbannedAddress, rateLimit(shares.readers, byIp)],
    handler: async (request) => {
      const shared = await shares.open(request.headers['x-share-token']);
      return { title: shared.title, sharedAt: shared.sharedAt.toISOString(), messages: shared.messages.map((m) => ({ ...m, createdAt: m.createdAt.toISOString() })) };
    },
  });
}
