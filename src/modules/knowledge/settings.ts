import { z } from 'zod';
import { ConfigError } from '../../errors.ts';
import { envInt, envMs, envNumber } from '../../platform/config/env.ts';

export interface KnowledgeSettings {
  /** Most tokens in a passage. */
  chunkTokens: number;
  /** Tokens repeated between consecutive passages. */
  overlapTokens: number;
  /** Tries of an ingestion job, and the first wait between them (doubling). */
  ingestAttempts: number;
  ingestBackoffMs: number;
  /** Vector hits below this cosine similarity are not results (a nearest neighbour is not always a relevant one). */
  minSimilarity: number;
  /** Collections one user may hold: each is listed, exported and searched, so this bounds what one account can make those cost. */
  maxCollections: number;
}

export const knowledgeEnv = {
  KNOWLEDGE_CHUNK_TOKENS: envInt(50, 8000).default(400),
  KNOWLEDGE_CHUNK_OVERLAP: envInt(0, 2000).default(60),
  KNOWLEDGE_INGEST_ATTEMPTS: envInt(1, 20).default(4),
  KNOWLEDGE_INGEST_BACKOFF_MS: envMs(0).default(15_000),
  KNOWLEDGE_MIN_SIMILARITY: envNumber(-1, 1).default(0.2),
  KNOWLEDGE_MAX_COLLECTIONS: envInt(1, 1_000_000).default(1_000),
};

const knowledgeEnvObject = z.object(knowledgeEnv);

export function knowledgeSettings(e: z.output<typeof knowledgeEnvObject>): KnowledgeSettings {
  if (e.KNOWLEDGE_CHUNK_OVERLAP >= e.KNOWLEDGE_CHUNK_TOKENS) throw new ConfigError('Invalid configuration:\n  KNOWLEDGE_CHUNK_OVERLAP: must be less than KNOWLEDGE_CHUNK_TOKENS');
  return {
    chunkTokens: e.KNOWLEDGE_CHUNK_TOKENS,
    overlapTokens: e.KNOWLEDGE_CHUNK_OVERLAP,
    ingestAttempts: e.KNOWLEDGE_INGEST_ATTEMPTS,
    ingestBackoffMs: e.KNOWLEDGE_INGEST_BACKOFF_MS,
    minSimilarity: e.KNOWLEDGE_MIN_SIMILARITY,
    maxCollections: e.KNOWLEDGE_MAX_COLLECTIONS,
  };
}
