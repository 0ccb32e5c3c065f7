import { defineModule } from '../module.ts';
import { fixedTools } from '../tools/index.ts';
import { createGrounding, type Grounding } from './grounding.ts';
import { createIngestion } from './ingest.ts';
import { createKnowledgeRepository } from './repository.ts';
import { knowledgeRoutes } from './routes.ts';
import { knowledgeChunks, knowledgeCollectionItems, knowledgeCollections, knowledgeConversationCollections, knowledgeItems } from './schema.ts';
import { createKnowledgeSearch, type KnowledgeSearch } from './search.ts';
import { createKnowledge, type Knowledge } from './service.ts';
import { knowledgeEnv, knowledgeSettings, type KnowledgeSettings } from './settings.ts';
import { searchKnowledgeTool } from './tool.ts';
import { createVectorIndex } from './vectors.ts';
import { knowledgeExport } from './export.ts';
import { knowledgeErasure } from './erasure.ts';

export { chunkText, type Chunk, type ChunkOptions } from './chunker.ts';
export type { Knowledge } from './service.ts';
export type { KnowledgeHit, KnowledgeSearch } from './search.ts';
export { groundingPrompt, type Citation, type Grounding, type Source } from './grounding.ts';

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
    /** The sources an answer draws on: passages of its project's and conversation's collections. */
    grounding: Grounding;
  }
  interface ModuleSettings {
    /** Passage size and overlap, ingestion retries, collections per user. */
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
  erasure: ({ deps }) => knowledgeErasure(deps.db),
  exports: ({ deps }) => knowledgeExport(deps.db),
  tables: { knowledgeCollections, knowledgeItems, knowledgeCollectionItems, knowledgeConversationCollections, knowledgeChunks },
  config: { env: knowledgeEnv, read: knowledgeSettings },
  needs: ['ai', 'files', 'jobs', 'projects', 'documents'],
  // Search takes in the user's messages, and collections attach to conversations: chat's, at run time (chat builds after, and grounds its answers here).
  uses: ['search', 'conversations'],
  provides: ['knowledge', 'knowledgeSearch', 'grounding'],
  services({ deps, config, services }) {
    const repo = createKnowledgeRepository(deps.db);
    const vectors = createVectorIndex(deps.db, deps.logger);
    const knowledgeSearch = createKnowledgeSearch({ db: deps.db, vectors, ai: services.ai, documents: services.documents, logger: deps.logger, minSimilarity: config.knowledge.minSimilarity });
    // One repository and one vector index (its extension check and indexes made once) for search and ingestion alike.
    const ingest = createIngestion({ repo, ai: services.ai, files: services.files, documents: services.documents, vectors, settings: config.knowledge, announce: deps.announce });
    return {
      knowledgeSearch,
      grounding: createGrounding({ repo, search: knowledgeSearch }),
      knowledge: createKnowledge({
        repo,
        ingest,
        jobs: services.jobs,
        files: services.files,
        documents: services.documents,
        projects: services.projects,
        retry: { attempts: config.knowledge.ingestAttempts, backoffMs: config.knowledge.ingestBackoffMs },
        maxCollections: config.knowledge.maxCollections,
      }),
    };
  },
  start: async ({ knowledgeSearch }) => knowledgeSearch.start(),
  routes: knowledgeRoutes,
  jobs: ({ services }) => [services.knowledge.job],
  subscriptions: ({ services }) => [
    {
      group: 'knowledge',
      types: ['file.deleted', 'document.deleted', 'document.saved', 'document.unshared'],
      handler: async (event) => {
        const p = event.payload as { fileId?: string; documentId?: string; version?: number; userId: string; authorId?: string };
        if (event.type === 'file.deleted') await services.knowledge.forget('file', p.fileId!);
        else if (event.type === 'document.deleted') await services.knowledge.forget('document', p.documentId!);
        // A reader's share removed: their collections let go of the document, whose item passes to its owner if it was theirs.
        else if (event.type === 'document.unshared') await services.knowledge.documentUnshared(p.documentId!, p.userId);
        // One event per save, naming its author (instances before that told each reader: the author's copy is the one).
        else if (p.userId === p.authorId) await services.knowledge.documentSaved(p.documentId!, p.version!);
      },
    },
  ],
  // What a project enables as `search_knowledge`: the model searches the user's knowledge itself.
  tools: ({ grounding }) => fixedTools(searchKnowledgeTool({ grounding })),
  topics: () => ({
    topics: [{ name: 'knowledge', scope: 'knowledge' }],
    events: ['knowledge.item.updated'],
    route: (type) => (type === 'knowledge.item.updated' ? ['knowledge'] : []),
  }),
});
