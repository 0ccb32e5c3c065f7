import { threadTask } from '../../platform/thread-pool.ts';
import { countTextTokens } from '../../platform/tokenizer.ts';
import { chunkText, type Chunk } from './chunker.ts';

/** A text to split, with the chunker's limits and the model whose encoding counts its passages. */
export interface ChunkTask {
  text: string;
  maxTokens: number;
  overlapTokens: number;
  model: string;
}

/** A chunking thread (see ingest.ts): chunkText with the model's token count, as the job would run it. */
export default threadTask((task: ChunkTask): Chunk[] =>
  chunkText(task.text, { maxTokens: task.maxTokens, overlapTokens: task.overlapTokens, count: (s) => countTextTokens(task.model, s) }),
);
