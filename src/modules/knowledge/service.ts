import { AppError, Conflict, NotFound } from '../../errors.ts';
import type { Documents } from '../documents/index.ts';
import type { Files } from '../files/index.ts';
import type { Jobs } from '../jobs/index.ts';
import type { Projects } from '../projects/index.ts';
import type { JobHandler } from '../../platform/queue/queue.ts';
import type { JobDefinition } from '../module.ts';
import { INGEST_QUEUE, type IngestJob } from './ingest.ts';
import type { KnowledgeRepository } from './repository.ts';
import type { CollectionRow, ItemRow } from './schema.ts';

export interface KnowledgeDeps {
  repo: KnowledgeRepository;
  /** The indexing job's handler (ingest.ts): run where the worker runs. */
  ingest: JobHandler<IngestJob, unknown>;
  jobs: Pick<Jobs, 'enqueue'>;
  files: Pick<Files, 'get'>;
  documents: Pick<Documents, 'peek' | 'readableIds' | 'ownerOf'>;
  projects: Pick<Projects, 'exists'>;
  /** Tries of an ingestion job (a provider outage), then dead for an admin to retry. */
  retry: { attempts: number; backoffMs: number };
  /** Collections one user may hold at once (KNOWLEDGE_MAX_COLLECTIONS). */
  maxCollections: number;
}

/** Longest one ingestion attempt may run (a large PDF, thousands of passages to embed). */
const INGEST_TIMEOUT_MS = 15 * 60_000;

/**
 * Collections of the user's files and documents, each indexed once as an
 * item whatever the number of collections holding it; adding one queues its
 * ingestion. Another user's collection or item is as missing as one that
 * does not exist.
 */
export function createKnowledge(d: KnowledgeDeps) {
  async function collection(userId: string, id: string): Promise<CollectionRow> {
    const row = await d.repo.collection(userId, id);
    if (!row) throw NotFound('Collection', 'collection_not_found');
    return row;
  }

  async function checkProject(userId: string, projectId: string | null | undefined) {
    if (projectId && !(await d.projects.exists(userId, projectId))) throw NotFound('Project', 'project_not_found');
  }

  /** Unless `userId` may read the item's document (again), their collections let go of it: see KnowledgeRepository.release. */
  const release = (itemId: string, userId: string, ownerId: string | undefined) => d.repo.release(itemId, userId, d.documents.readableIds(userId), ownerId);

  const ingest = (item: Pick<ItemRow, 'id' | 'userId'>, key: string) =>
    d.jobs.enqueue<IngestJob>(INGEST_QUEUE, { itemId: item.id }, { attempts: d.retry.attempts, backoffMs: d.retry.backoffMs, timeoutMs: INGEST_TIMEOUT_MS, userId: item.userId, idempotencyKey: `${item.id}:${key}` });

  return {
    /** The indexing queue and its handler, for the module's jobs. */
    job: { queue: INGEST_QUEUE, handler: d.ingest } satisfies JobDefinition,

    async create(userId: string, input: { name: string; description?: string | null; projectId?: string | null }): Promise<CollectionRow> {
      await checkProject(userId, input.projectId);
      const row = await d.repo.createCollection({ userId, name: input.name, description: input.description ?? null, projectId: input.projectId ?? null }, d.maxCollections);
      if (!row) throw Conflict(`At most ${d.maxCollections} knowledge collections per user: delete one first`, 'collection_limit');
      return row;
    },
    get: collection,
    list: (userId: string, opts: { limit: number; cursor?: string; projectId?: string }) => d.repo.collections(userId, opts),
    async update(userId: string, id: string, patch: { name?: string; description?: string | null; projectId?: string | null }): Promise<CollectionRow> {
      await checkProject(userId, patch.projectId);
      const row = await d.repo.updateCollection(userId, id, patch);
      if (!row) throw NotFound('Collection', 'collection_not_found');
      return row;
    },
    /** The collection goes; items no other collection holds go with their passages. */
    async delete(userId: string, id: string): Promise<void> {
      if (!(await d.repo.deleteCollection(userId, id))) throw NotFound('Collection', 'collection_not_found');
      await d.repo.deleteOrphans(await d.repo.orphans(userId));
    },

    /** Adds one of the user's files, or a document they can read, and queues its indexing (202: it is `queued`). */
    async add(userId: string, collectionId: string, source: { fileId?: string; documentId?: string }): Promise<ItemRow> {
      await collection(userId, collectionId);
      let ref: { kind: ItemRow['kind']; refId: string; title: string };
      let ownerId: string | undefined;
      if (source.fileId) {
        const file = await d.files.get(userId, source.fileId);
        ref = { kind: 'file', refId: file.id, title: file.name };
      } else {
        const { doc } = await d.documents.peek(userId, source.documentId!);
        ref = { kind: 'document', refId: doc.id, title: doc.title || 'Untitled' };
        ownerId = doc.ownerId;
      }
      const { item, created } = await d.repo.addItem(collectionId, { userId, ...ref });
      // A share removed (or the document deleted) while this add was under way: its event may have come and gone
      // before the link was made, so the add looks again once the link is in, and takes it back (as the event would)
      // if the reader no longer reads the document. One or the other sees the link: each holds the item to decide.
      if (ref.kind === 'document' && !(await release(item.id, userId, ownerId)).readable) throw NotFound('Document', 'document_not_found');
      if (created || item.status === 'failed') {
        if (!created) await d.repo.setItem(item.id, { status: 'queued', error: null });
        await ingest(item, created ? 'first' : `retry-${Date.now()}`);
        return { ...item, status: 'queued', error: null };
      }
      return item;
    },

    items: async (userId: string, collectionId: string, opts: { limit: number; cursor?: string }) => {
      await collection(userId, collectionId);
      return d.repo.itemsOf(collectionId, d.documents.readableIds(userId), opts);
    },

    async remove(userId: string, collectionId: string, itemId: string): Promise<void> {
      await collection(userId, collectionId);
      if (!(await d.repo.removeItem(collectionId, itemId))) throw NotFound('Item', 'item_not_found');
    },

    /** An item the user may see: one of their own, in one of their collections; a document's while they may still read it. */
    async item(userId: string, itemId: string): Promise<ItemRow> {
      const item = await d.repo.item(itemId);
      if (!item || item.userId !== userId) throw NotFound('Item', 'item_not_found');
      // Their share removed, the item passes to the owner on `document.unshared`: until then it is not theirs to see either.
      if (item.kind === 'document') {
        await d.documents.peek(userId, item.refId).catch((err: unknown) => {
          throw err instanceof AppError && err.status === 404 ? NotFound('Item', 'item_not_found') : err;
        });
      }
      return item;
    },

    /** Queues indexing again (after an edit the event missed, or a failure); 409 while one is under way. */
    async reindex(userId: string, itemId: string): Promise<ItemRow> {
      const item = await this.item(userId, itemId);
      if (!(await d.repo.requeue(item.id))) throw new AppError(409, 'already_indexing', 'Conflict', 'This item is being indexed already');
      await ingest(item, `reindex-${Date.now()}`);
      return { ...item, status: 'queued', error: null };
    },

    /** The collections a conversation draws on beside its project's (the caller checked the conversation is the user's); 404 for one not theirs. */
    async setConversationCollections(userId: string, conversationId: string, collectionIds: string[]): Promise<string[]> {
      const unique = [...new Set(collectionIds)];
      const own = await d.repo.ownCollections(userId, unique);
      if (own.length !== unique.length) throw NotFound('Collection', 'collection_not_found');
      await d.repo.setConversationCollections(userId, conversationId, unique);
      return unique;
    },
    conversationCollections: (userId: string, conversationId: string) => d.repo.conversationCollections(userId, conversationId),

    /** A document was saved: its item (if any) is indexed again; unchanged passages keep their embeddings. */
    async documentSaved(documentId: string, version: number): Promise<void> {
      const item = await d.repo.itemByRef('document', documentId);
      if (!item) return;
      await d.repo.setItem(item.id, { status: 'queued' });
      await ingest(item, `v${version}`);
    },

    /**
     * For `document.unshared`: the reader's collections let go of the document's item (gone when no other collection
     * holds it; the owner's when it was the reader's), unless they may read it again by now (shared again).
     */
    async documentUnshared(documentId: string, userId: string) {
      const item = await d.repo.itemByRef('document', documentId);
      return item ? release(item.id, userId, await d.documents.ownerOf(documentId)) : undefined;
    },

    /** The file or document is gone: so is its item, with its passages. */
    forget: (kind: ItemRow['kind'], refId: string) => d.repo.deleteItemByRef(kind, refId),
  };
}

export type Knowledge = ReturnType<typeof createKnowledge>;
