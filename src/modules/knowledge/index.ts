import { defineModule } from '../module.ts';

export { chunkText, type Chunk, type ChunkOptions } from './chunker.ts';

/**
 * Knowledge: what the model may draw on from the user's own documents and files. So far the
 * chunker that splits a text into passages by its structure; collections, ingestion jobs,
 * embeddings and hybrid search build on it.
 */
export const knowledgeModule = defineModule({ name: 'knowledge' });
