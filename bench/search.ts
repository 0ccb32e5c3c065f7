// npm run bench:search — knowledge search latency as the data grows: hybrid
// (full text + vectors, fused) beside full text alone, with N passages in the
// database, on the embedded database (PGlite with pgvector's HNSW index) and,
// when DATABASE_URL is set, on PostgreSQL (HNSW where the vector extension is
// installed, an exact scan otherwise). Passages are seeded straight into the
// tables (random sentences over a 5,000-word vocabulary, embedded with the
// test suite's dense bag-of-words embedder: every dimension used, as with a
// real model); queries go through the service as a
// request would, the query's embedding from a local OpenAI-compatible server
// that answers at once. Then ingestion: passages per second for a large text
// file through the real job (chunk, embed, store).
//   BENCH_SEARCH_SIZES  passages per run (default 10000,100000)
//   BENCH_SEARCH_DIMS   embedding dimensions (default 384)
//   BENCH_SEARCH_QUERIES queries per measurement (default 200; 20 for exact scans)
import { randomUUID } from 'node:crypto';
import { cpus, loadavg } from 'node:os';
import { sql } from 'drizzle-orm';
import { uuidv7 } from 'uuidv7';
import { createKnowledgeSearch } from '../src/modules/knowledge/search.ts';
import { createVectorIndex } from '../src/modules/knowledge/vectors.ts';
import { knowledgeChunks, knowledgeItems } from '../src/modules/knowledge/schema.ts';
import { startApp, type Backend, type TestApp } from '../test/support/app.ts';
import { denseEmbedding } from '../test/support/fake-embeddings.ts';
import { startFakeOpenAI } from '../test/support/fake-openai.ts';
import { createUser } from '../test/support/factories.ts';

const SIZES = (process.env.BENCH_SEARCH_SIZES ?? '10000,100000').split(',').map(Number);
const DIMS = Number(process.env.BENCH_SEARCH_DIMS ?? 384);
const QUERIES = Number(process.env.BENCH_SEARCH_QUERIES ?? 200);
const PER_ITEM = 100;

// A deterministic vocabulary and sentences, so runs compare.
let seed = 42;
const random = () => ((seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31) / 2 ** 31);
const syllables = ['ka', 'lo', 'mi', 'ne', 'ru', 'sa', 'ti', 'vo', 'ze', 'po', 'da', 'fi', 'gu', 'ha', 'je'];
const vocabulary = Array.from({ length: 5000 }, (_, i) => `${syllables[i % 15]}${syllables[Math.floor(i / 15) % 15]}${syllables[Math.floor(i / 225) % 15]}${i}`);
const word = () => vocabulary[Math.floor(random() ** 2 * vocabulary.length)]!; // a few words common, most rare
const passage = () => Array.from({ length: 40 + Math.floor(random() * 40) }, word).join(' ') + '.';

const percentile = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;

async function seedPassages(t: TestApp, userId: string, n: number) {
  const db = t.deps.db;
  for (let done = 0; done < n; ) {
    const itemId = uuidv7();
    const count = Math.min(PER_ITEM, n - done);
    await db.insert(knowledgeItems).values({ id: itemId, userId, kind: 'file', refId: randomUUID(), title: `item ${done / PER_ITEM}`, status: 'ready', chunks: count, tokens: count * 80, embeddingModel: `openai:bench-dense-${DIMS}`, indexedAt: new Date() });
    const rows = Array.from({ length: count }, (_, i) => {
      const text = passage();
      return { itemId, userId, index: i, text, headings: [], start: 0, end: text.length, tokens: 80, hash: randomUUID(), embedding: denseEmbedding(text, DIMS), dims: DIMS };
    });
    await db.insert(knowledgeChunks).values(rows);
    done += count;
  }
}

async function measure(label: string, queries: number, fn: (q: string) => Promise<unknown>) {
  for (let i = 0; i < 10; i++) await fn(`${word()} ${word()}`);
  const times: number[] = [];
  for (let i = 0; i < queries; i++) {
    const q = `${word()} ${word()}`;
    const started = performance.now();
    await fn(q);
    times.push(performance.now() - started);
  }
  times.sort((a, b) => a - b);
  return { label, p50: percentile(times, 50), p99: percentile(times, 99) };
}

async function main() {
  const openai = await startFakeOpenAI();
  const backends: Backend[] = ['embedded', ...(process.env.DATABASE_URL ? (['postgres'] as const) : [])];
  const rows: string[] = [];
  for (const backend of backends) {
    for (const n of SIZES) {
      const t = await startApp({ backend, worker: false, env: { ...openai.env, EMBEDDING_MODEL: `openai:bench-dense-${DIMS}` } });
      const u = await createUser(t);
      let started = performance.now();
      await seedPassages(t, u.id, n);
      const seeded = (performance.now() - started) / 1000;
      const vectors = createVectorIndex(t.deps.db, t.deps.logger);
      started = performance.now();
      await vectors.ensure(DIMS);
      const indexed = (performance.now() - started) / 1000;
      // As the knowledge.analyze schedule keeps them (PGlite has no autovacuum to do it).
      await t.deps.db.execute(sql`analyze knowledge_items, knowledge_chunks`);
      const services = t.services as any;
      const documents = { readableIds: () => sql`select null::uuid where false` };
      const hybrid = services.knowledgeSearch;
      const fullText = createKnowledgeSearch({ db: t.deps.db, vectors, ai: { embeddings: { defaultModel: undefined } } as never, documents, logger: t.deps.logger, minSimilarity: 0.2 });
      const q = vectors.mode === 'exact' ? Math.min(QUERIES, 20) : QUERIES;
      const page = { limit: 10, offset: 0 };
      const h = await measure('hybrid', q, (text) => hybrid.search(u.id, { q: text, kinds: ['file'] }, page));
      const f = await measure('full text', q, (text) => fullText.search(u.id, { q: text, kinds: ['file'] }, page));
      rows.push(`| ${backend} | ${vectors.mode} | ${n.toLocaleString('en')} | ${h.p50.toFixed(1)} / ${h.p99.toFixed(1)} | ${f.p50.toFixed(1)} / ${f.p99.toFixed(1)} | ${seeded.toFixed(0)} s | ${indexed.toFixed(0)} s |`);
      console.error(rows.at(-1));
      await t.close();
    }
  }

  // Ingestion through the real job: a large text file, chunked, embedded (instant upstream), stored.
  const ingest: string[] = [];
  for (const backend of backends) {
    const t = await startApp({ backend, env: { ...openai.env, EMBEDDING_MODEL: 'openai:text-embedding-3-small' } });
    const u = await createUser(t);
    const text = Array.from({ length: 4000 }, passage).join('\n\n');
    const form = new FormData();
    form.append('file', new Blob([text]), 'corpus.txt');
    const file = (await (await fetch(`${t.url}/v1/files`, { method: 'POST', headers: { authorization: `Bearer ${u.accessToken}` }, body: form })).json()) as { id: string };
    const collection = await t.api('POST', '/v1/knowledge/collections', { token: u.accessToken, body: { name: 'bench' } });
    const started = performance.now();
    const item = await t.api('POST', `/v1/knowledge/collections/${collection.body.id}/items`, { token: u.accessToken, body: { fileId: file.id } });
    let state: any;
    do {
      await new Promise((r) => setTimeout(r, 100));
      state = (await t.api('GET', `/v1/knowledge/items/${item.body.id}`, { token: u.accessToken })).body;
    } while (state.status !== 'ready' && state.status !== 'failed');
    const seconds = (performance.now() - started) / 1000;
    ingest.push(`| ${backend} | ${(text.length / 1e6).toFixed(1)} MB | ${state.chunks} | ${seconds.toFixed(1)} s | ${(state.chunks / seconds).toFixed(0)} |`);
    await t.close();
  }
  await openai.close();

  console.log(`\nbench:search on ${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}, load ${loadavg()[0]!.toFixed(1)}; ${DIMS}-dimensional embeddings; top 10 of 50 candidates per list\n`);
  console.log('| database | vectors | passages | hybrid p50 / p99 ms | full text p50 / p99 ms | seeding | index build |');
  console.log('|---|---|--:|--:|--:|--:|--:|');
  for (const r of rows) console.log(r);
  console.log('\n| ingestion | text | passages | time | passages/s |');
  console.log('|---|--:|--:|--:|--:|');
  for (const r of ingest) console.log(r);
}

await main();
