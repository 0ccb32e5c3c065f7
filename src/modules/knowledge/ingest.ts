import { AppError } from '../../errors.ts';
import type { Announce } from '../../platform/bus/bus.ts';
import type { JobHandler } from '../../platform/queue/queue.ts';
import { createThreadPool, ThreadTimeout } from '../../platform/thread-pool.ts';
import type { AiService } from '../ai/index.ts';
import type { Documents } from '../documents/index.ts';
import { MAX_TEXT_CHARS, type Files } from '../files/index.ts';
import { chunkText, type Chunk } from './chunker.ts';
import type { ChunkTask } from './chunk-worker.ts';
import type { KnowledgeRepository, NewChunk } from './repository.ts';
import type { ItemRow } from './schema.ts';
import type { KnowledgeSettings } from './settings.ts';
import { normalise, type VectorIndex } from './vectors.ts';

export const INGEST_QUEUE = 'knowledge.ingest';
/** Passages embedded per upstream call here, and so per progress step. */
const EMBED_BATCH = 64;
/** Counted with this tokenizer when no embedding model is configured (full-text passages still need a size). */
const FALLBACK_COUNT_MODEL = 'openai:text-embedding-3-small';

/**
 * Characters of text split into passages on the job's own thread; a longer text is split on a thread of its own.
 * The chunker counts a text's pieces several times over as it packs them (about 12,000 counts for 2 MB of prose, over
 * half a second in one stretch), during which the process would answer nothing else. This many take a few milliseconds.
 */
export const INLINE_CHUNK_CHARS = 4_096;
/** The longest one text's split may take on its thread: prose of the largest text (2 million characters) takes about a second. */
const CHUNK_TIMEOUT_MS = 5 * 60_000;

/**
 * chunkText with `model`'s token count (a catalog id, as ai.countTokens takes it), its results the same wherever it runs:
 * short texts here, longer ones on a thread (one at a time per process), stopped after `timeoutMs` or when `signal` aborts.
 */
export function createPassageSplitter(opts: { ai: Pick<AiService, 'model' | 'countTokens'>; timeoutMs: number }) {
  const pool = createThreadPool<ChunkTask, Chunk[]>({ worker: new URL('./chunk-worker.ts', import.meta.url), threads: 1, timeoutMs: opts.timeoutMs });
  return {
    split(text: string, limits: { maxTokens: number; overlapTokens: number; model: string }, signal?: AbortSignal): Promise<Chunk[]> {
      if (text.length <= INLINE_CHUNK_CHARS) return Promise.resolve(chunkText(text, { ...limits, count: (s) => opts.ai.countTokens(limits.model, s) }));
      // The thread counts with platform/tokenizer.ts directly: the provider's model name, as ai.countTokens resolves it.
      return pool.run({ text, maxTokens: limits.maxTokens, overlapTokens: limits.overlapTokens, model: opts.ai.model(limits.model)?.model ?? limits.model }, signal);
    },
    close: () => pool.close(),
  };
}

export interface IngestJob {
  itemId: string;
}

export interface IngestDeps {
  repo: KnowledgeRepository;
  ai: Pick<AiService, 'embeddings' | 'countTokens' | 'model'>;
  files: Pick<Files, 'get' | 'textOf'>;
  documents: Pick<Documents, 'peek' | 'ownerOf'>;
  vectors: VectorIndex;
  settings: KnowledgeSettings;
  announce: Announce;
}

/** A failure retrying cannot fix: the item is marked failed at once, and the job ends. */
class Unreadable extends Error {
  readonly code: string;
  constructor(code: string, message: string) {
    super(message);
    this.code = code;
  }
}

/**
 * Indexes one item as a queued job: its text, split into passages by
 * structure and tokens, each embedded (unless an unchanged passage already
 * was, by hash), all stored in one swap. A failing provider fails the attempt
 * and the queue retries; until a swap, search keeps the previous passages.
 */
export function createIngestion(d: IngestDeps): JobHandler<IngestJob, { chunks: number; embedded: number; reused: number } | { skipped: string }> {
  // Its thread starts with the first long text and, idle, does not keep the process alive.
  const splitter = createPassageSplitter({ ai: d.ai, timeoutMs: CHUNK_TIMEOUT_MS });
  const say = (item: ItemRow, status: ItemRow['status'], extra: { progress?: number; chunks?: number; error?: { code: string; message: string } } = {}) =>
    d.announce('knowledge.item.updated', { userId: item.userId, itemId: item.id, kind: item.kind, refId: item.refId, status, ...extra });

  type Doc = Awaited<ReturnType<Documents['peek']>>['doc'];

  /** The document as `userId` reads it; undefined when they may not (or it was deleted). */
  const readAs = (userId: string, documentId: string): Promise<Doc | undefined> =>
    d.documents.peek(userId, documentId).then(
      (view) => view.doc,
      (err: unknown) => {
        if (err instanceof AppError && err.status === 404) return undefined;
        throw err;
      },
    );

  /**
   * The item, and its document read once as its holder. A document is indexed once for all its readers, as
   * whoever added it first. Once they may no longer read it (their share removed), the item passes to the
   * document's owner, who always may: otherwise the owner's own collections would hold an item that failed at
   * every save, which the owner could neither see nor index again.
   */
  async function held(found: ItemRow): Promise<{ item: ItemRow; doc?: Doc }> {
    if (found.kind !== 'document') return { item: found };
    const doc = await readAs(found.userId, found.refId);
    if (doc) return { item: found, doc };
    const owner = await d.documents.ownerOf(found.refId);
    if (!owner || owner === found.userId) return { item: found };
    await d.repo.handOver(found.id, owner);
    return { item: { ...found, userId: owner }, doc: await readAs(owner, found.refId) };
  }

  async function textOf(item: ItemRow, doc: Doc | undefined): Promise<{ text: string; version: number | null }> {
    if (item.kind === 'file') {
      const file = await d.files.get(item.userId, item.refId).catch((err: unknown) => {
        if (err instanceof AppError && err.status === 404) throw new Unreadable('source_missing', 'The file was deleted');
        throw err;
      });
      const text = await d.files.textOf(file).catch((err: unknown) => {
        if (err instanceof AppError && err.status < 500) throw new Unreadable('unreadable', err.message);
        throw err;
      });
      if (text === null) throw new Unreadable('no_text', `Files of type ${file.mimeType} have no text to index`);
      return { text, version: null };
    }
    if (!doc) throw new Unreadable('source_missing', 'The document was deleted');
    return { text: doc.title ? `# ${doc.title}\n\n${doc.body}` : doc.body, version: doc.version };
  }

  return async (job, ctx) => {
    const found = await d.repo.item(job.itemId);
    if (!found) return { skipped: 'the item was removed' };
    let item = found;
    try {
      // The document is read here, once, inside the attempt: a read that fails on the last attempt fails the item.
      const holding = await held(found);
      item = holding.item;
      await d.repo.setItem(item.id, { status: 'indexing' });
      say(item, 'indexing', { progress: 0 });
      const { text, version } = await textOf(item, holding.doc);
      const model = d.ai.embeddings.defaultModel;
      const limits = { maxTokens: d.settings.chunkTokens, overlapTokens: d.settings.overlapTokens, model: model ?? FALLBACK_COUNT_MODEL };
      const passages = await splitter.split(text, limits, ctx.signal).catch((err: unknown) => {
        // The same text would take as long again: no retry can fix it.
        if (err instanceof ThreadTimeout) throw new Unreadable('too_slow', `Splitting the text into passages took over ${CHUNK_TIMEOUT_MS / 60_000} minutes; it was stopped`);
        throw err;
      });
      if (!passages.length) throw new Unreadable('empty', 'There is no text to index');

      // Unchanged passages keep their embeddings, when made with the model in use now.
      const known = new Map<string, { embedding: number[]; dims: number }>();
      if (model && item.embeddingModel === model) for (const c of await d.repo.chunksOf(item.id)) if (c.embedding && c.dims) known.set(c.hash, { embedding: c.embedding, dims: c.dims });
      const missing = model ? passages.filter((p) => !known.has(p.hash)) : [];
      let embedded = 0;
      for (let i = 0; i < missing.length; i += EMBED_BATCH) {
        const batch = missing.slice(i, i + EMBED_BATCH);
        const result = await d.ai.embeddings.embed(
          batch.map((p) => (p.headings.length ? `${p.headings.join(' › ')}\n\n${p.text}` : p.text)),
          { meter: { userId: item.userId }, signal: ctx.signal },
        );
        for (const [j, p] of batch.entries()) known.set(p.hash, { embedding: normalise(result.vectors[j]!), dims: result.vectors[j]!.length });
        embedded += batch.length;
        const progress = Math.round((embedded / missing.length) * 100);
        await ctx.progress(progress);
        say(item, 'indexing', { progress });
      }
      const dims = new Set([...known.values()].map((k) => k.dims));
      for (const n of dims) await d.vectors.ensure(n);
      const rows: NewChunk[] = passages.map((p) => {
        const vector = model ? known.get(p.hash) : undefined;
        return { index: p.index, text: p.text, headings: p.headings, start: p.start, end: p.end, tokens: p.tokens, hash: p.hash, embedding: vector?.embedding ?? null, dims: vector?.dims ?? null };
      });
      await d.repo.replaceChunks(item, rows, { embeddingModel: model ?? null, sourceVersion: version, tokens: passages.reduce((n, p) => n + p.tokens, 0), truncated: text.length >= MAX_TEXT_CHARS });
      say(item, 'ready', { progress: 100, chunks: rows.length });
      return { chunks: rows.length, embedded, reused: model ? passages.length - embedded : 0 };
    } catch (err) {
      const unreadable = err instanceof Unreadable;
      // The last attempt, or one no retry can fix: say so on the item; otherwise the queue tries again.
      if (unreadable || ctx.attempt >= ctx.maxAttempts) {
        const error = { code: unreadable ? err.code : err instanceof AppError ? err.code : 'ingestion_failed', message: (err as Error).message };
        await d.repo.setItem(item.id, { status: 'failed', error });
        say(item, 'failed', { error });
      }
      if (unreadable) return { skipped: err.message };
      throw err;
    }
  };
}
