import type { FastifyRequest } from 'fastify';
import { z } from 'zod';
import { principal } from '../../http/guards.ts';
import { page, toPage } from '../../http/pagination.ts';
import { problemSchema } from '../../http/problem.ts';
import type { App } from '../../http/types.ts';
import type { RouteContext } from '../module.ts';
import {
  addItemBody,
  collectionItemParams,
  collectionParams,
  collectionSchema,
  collectionsQuery,
  createCollectionBody,
  encodeOffset,
  itemParams,
  itemSchema,
  searchQuery,
  searchResponse,
  statusSchema,
  toCollection,
  toItem,
  updateCollectionBody,
} from './contracts.ts';

const problems = { 400: problemSchema, 401: problemSchema, 403: problemSchema, 404: problemSchema };
const tags = ['knowledge'];

/** Collections, their items and indexing, and hybrid search. API keys need the `knowledge` scope. */
export function knowledgeRoutes(app: App, { services, guards }: RouteContext<'knowledge' | 'knowledgeSearch' | 'ai' | 'search' | 'conversations'>) {
  const { knowledge, knowledgeSearch } = services;
  const onRequest = guards.user({ scope: 'knowledge' });
  const me = (request: FastifyRequest) => principal(request).userId;

  app.get('/knowledge/status', {
    schema: { tags, summary: 'Which search mode is active', response: { 200: statusSchema, ...problems } },
    onRequest,
    handler: async () => {
      const model = services.ai.embeddings.defaultModel ?? null;
      return { mode: model ? ('hybrid' as const) : ('full-text' as const), embeddingModel: model, vectorIndex: knowledgeSearch.vectorMode() };
    },
  });

  app.post('/knowledge/collections', {
    schema: {
      tags,
      summary: 'Create a collection',
      description: 'A user with `KNOWLEDGE_MAX_COLLECTIONS` collections already (default 1000) is 409 `collection_limit`.',
      body: createCollectionBody,
      response: { 201: collectionSchema, 409: problemSchema, ...problems },
    },
    onRequest,
    handler: async (request, reply) => reply.status(201).send(toCollection(await knowledge.create(me(request), request.body))),
  });

  app.get('/knowledge/collections', {
    schema: { tags, summary: 'Your collections, newest first', querystring: collectionsQuery, response: { 200: page(collectionSchema), ...problems } },
    onRequest,
    handler: async (request) => {
      const { limit, ...rest } = request.query;
      return toPage(await knowledge.list(me(request), { ...rest, limit: limit + 1 }), limit, toCollection);
    },
  });

  app.get('/knowledge/collections/:id', {
    schema: { tags, summary: 'One collection', params: collectionParams, response: { 200: collectionSchema, ...problems } },
    onRequest,
    handler: async (request) => toCollection(await knowledge.get(me(request), request.params.id)),
  });

  app.patch('/knowledge/collections/:id', {
    schema: { tags, summary: 'Rename, describe or move a collection', params: collectionParams, body: updateCollectionBody, response: { 200: collectionSchema, ...problems } },
    onRequest,
    handler: async (request) => toCollection(await knowledge.update(me(request), request.params.id, request.body)),
  });

  app.delete('/knowledge/collections/:id', {
    schema: { tags, summary: 'Delete a collection (items no other collection holds go with it)', params: collectionParams, response: { 204: z.null(), ...problems } },
    onRequest,
    handler: async (request, reply) => {
      await knowledge.delete(me(request), request.params.id);
      return reply.status(204).send(null);
    },
  });

  app.post('/knowledge/collections/:id/items', {
    schema: {
      tags,
      summary: 'Add a file or a document to a collection',
      description: 'Indexing runs as a queued job (`knowledge.ingest`): the item is `queued`, then `indexing`, then `ready` or `failed`; the owner\'s sockets hear `knowledge.item.updated` on the `knowledge` topic, with progress.',
      params: collectionParams,
      body: addItemBody,
      response: { 202: itemSchema, ...problems },
    },
    onRequest,
    handler: async (request, reply) => reply.status(202).send(toItem(await knowledge.add(me(request), request.params.id, request.body))),
  });

  app.get('/knowledge/collections/:id/items', {
    schema: { tags, summary: "A collection's items and their indexing state", params: collectionParams, querystring: collectionsQuery.omit({ projectId: true }), response: { 200: page(itemSchema), ...problems } },
    onRequest,
    handler: async (request) => {
      const { limit, cursor } = request.query;
      return toPage(await knowledge.items(me(request), request.params.id, { limit: limit + 1, cursor }), limit, toItem);
    },
  });

  app.delete('/knowledge/collections/:id/items/:itemId', {
    schema: { tags, summary: 'Take an item out of a collection', params: collectionItemParams, response: { 204: z.null(), ...problems } },
    onRequest,
    handler: async (request, reply) => {
      await knowledge.remove(me(request), request.params.id, request.params.itemId);
      return reply.status(204).send(null);
    },
  });

  app.get('/knowledge/items/:itemId', {
    schema: { tags, summary: 'An item and its indexing state', params: itemParams, response: { 200: itemSchema, ...problems } },
    onRequest,
    handler: async (request) => toItem(await knowledge.item(me(request), request.params.itemId)),
  });

  app.post('/knowledge/items/:itemId/reindex', {
    schema: { tags, summary: 'Index an item again', params: itemParams, response: { 202: itemSchema, 409: problemSchema, ...problems } },
    onRequest,
    handler: async (request, reply) => reply.status(202).send(toItem(await knowledge.reindex(me(request), request.params.itemId))),
  });

  const conversationCollections = z.object({ collectionIds: z.array(z.uuid()).max(20).describe('Knowledge collections this conversation draws on, beside its project\'s') });
  app.get('/conversations/:id/collections', {
    schema: { tags, summary: 'The collections a conversation draws on', params: collectionParams, response: { 200: conversationCollections, ...problems } },
    onRequest: guards.user({ scope: 'chat' }),
    handler: async (request) => {
      await services.conversations.get(me(request), request.params.id);
      return { collectionIds: await knowledge.conversationCollections(me(request), request.params.id) };
    },
  });

  app.put('/conversations/:id/collections', {
    schema: {
      tags,
      summary: 'Set the collections a conversation draws on',
      description: "Each answer in the conversation is given the best passages of these collections and of its project's (see Grounded answers), and cites them.",
      params: collectionParams,
      body: conversationCollections.strict(),
      response: { 200: conversationCollections, ...problems },
    },
    onRequest: guards.user({ scope: 'chat' }),
    handler: async (request) => {
      await services.conversations.get(me(request), request.params.id);
      return { collectionIds: await knowledge.setConversationCollections(me(request), request.params.id, request.body.collectionIds) };
    },
  });

  app.get('/knowledge/search', {
    schema: {
      tags,
      summary: 'Search your documents, files and conversations',
      description:
        'Passages of your files and of the documents you can read, ranked by full text and (with an embedding model) by vector similarity, and your messages by full text; ' +
        'the lists are fused by reciprocal rank fusion (k = 60). Filters narrow to collections, a project, kinds and dates.',
      querystring: searchQuery,
      response: { 200: searchResponse, ...problems },
    },
    onRequest,
    handler: async (request) => {
      const { q, collectionId, projectId, kind, tag, from, to, limit, cursor } = request.query;
      const offset = cursor ?? 0;
      const caller = principal(request);
      const result = await knowledgeSearch.search(caller.userId, { q, collectionIds: collectionId, projectId, kinds: kind, tag, from, to }, { limit: limit + 1, offset }, { apiKeyId: caller.apiKeyId ?? null, conversations: services.search });
      const more = result.hits.length > limit;
      return { data: result.hits.slice(0, limit), nextCursor: more ? encodeOffset(offset + limit) : null, mode: result.mode, degraded: result.degraded };
    },
  });
}
