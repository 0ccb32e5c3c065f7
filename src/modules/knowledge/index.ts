import { defineModule } from '../module.ts';
import { createIngestion, INGEST_QUEUE } from './ingest.ts';
import { createKnowledgeRepository } from './repository.ts';
import { knowledgeRoutes } from './routes.ts';
import { knowledgeChunks, knowledgeCollectionItems, knowledgeCollections, knowledgeItems } from './schema.ts';
import { createKnowledgeSearch, type KnowledgeSearch } from './search.ts';
import { createKnowledge, type Knowledge } from './service.ts';
import { knowledgeEnv, knowledgeSettings, type KnowledgeSettings } from './settings.ts';
import { createVectorIndex } from './vectors.ts';

export { chunkText, type Chunk, type ChunkOptions } from './chunker.ts';
export type { Knowledge } from './service.ts';
export type { KnowledgeHit, KnowledgeSearch } from './search.ts';

declare module '../../platform/bus/events.ts' {
  interface DomainEvents {
    /** An item's indexing moved: queued → indexing (with progress) → ready (with its passages) or failed (with why). */
    'knowledge.item.updated': {
      userId: string;
      itemId: string;
      kind: 'file' | 'document';
      refId: string;
      status: 'queued' | 'indexing' | 'ready' | 'failed';
      progress?: number;
      chunks?: number;
      error?: { code: string; message: string };
    };
  }
}

declare module '../module.ts' {
  interface ServiceMap {
    /** Collections of files and documents, and their indexing. */
    knowledge: Knowledge;
    /** Hybrid search (full text + vectors, fused) over what a user may read. */
    knowledgeSearch: KnowledgeSearch;
  }
  interface ModuleSettings {
    /** Passage size and overlap. */
    knowledge: KnowledgeSettings;
  }
}

/**
 * Knowledge: collections of the user's files and documents, indexed by queued
 * jobs into passages (split by structure, embedded when a model is
 * configured, unchanged passages kept), and one hybrid search over those
 * passages and the user's conversations.
 */
export const knowledgeModule = defineModule({
  name: 'knowledge',
  tables: { knowledgeCollections, knowledgeItems, knowledgeCollectionItems, knowledgeChunks },
  config: { env: knowledgeEnv, read: knowledgeSettings },
  needs: ['ai', 'files', 'jobs', 'projects', 'documents', 'search'],
  provides: ['knowledge', 'knowledgeSearch'],
  services({ deps, config, services }) {
    const repo = createKnowledgeRepository(deps.db);
    const vectors = createVectorIndex(deps.db, deps.logger);
    return {
      knowledge: createKnowledge({ repo, jobs: services.jobs, files: services.files, documents: services.documents, projects: services.projects, retry: { attempts: config.knowledge.ingestAttempts, backoffMs: config.knowledge.ingestBackoffMs } }),
      knowledgeSearch: createKnowledgeSearch({ db: deps.db, vectors, ai: services.ai, documents: services.documents, conversations: services.search, logger: deps.logger, minSimilarity: config.knowledge.minSimilarity }),
    };
  },
  start: async ({ knowledgeSearch }) => knowledgeSearch.start(),
  routes: knowledgeRoutes,
  jobs: ({ deps, config, services }) => [
    {
      queue: INGEST_QUEUE,
      handler: createIngestion({
        repo: createKnowledgeRepository(deps.db),
        ai: services.ai,
        files: services.files,
        documents: services.documents,
        vectors: createVectorIndex(deps.db, deps.logger),
        settings: config.knowledge,
        announce: deps.announce,
      }),
    },
  ],
  subscriptions: ({ services }) => [
    {
      group: 'knowledge',
      types: ['file.deleted', 'document.deleted', 'document.saved'],
      handler: async (event) => {
        const p = event.payload as { fileId?: string; documentId?: string; version?: number; userId: string; authorId?: string };
        if (event.type === 'file.deleted') await services.knowledge.forget('file', p.fileId!);
        else if (event.type === 'document.deleted') await services.knowledge.forget('document', p.documentId!);
        // Told once per reader: the author's copy is enough.
        else if (p.userId === p.authorId) await services.knowledge.documentSaved(p.documentId!, p.version!);
      },
    },
  ],
  topics: () => ({
    topics: [{ name: 'knowledge', scope: 'knowledge' }],
    events: ['knowledge.item.updated'],
    route: (type) => (type === 'knowledge.item.updated' ? ['knowledge'] : []),
  }),
});
