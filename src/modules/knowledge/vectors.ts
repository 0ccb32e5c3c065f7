import { sql, type SQL } from 'drizzle-orm';
import type { Db } from '../../platform/db/database.ts';
import type { Logger } from '../../platform/observability/logger.ts';

export type VectorMode = 'pgvector' | 'exact';

/** An embedding as PostgreSQL literals: `{…}` for real[], `[…]` for pgvector. */
const asArray = (v: number[]) => `{${v.join(',')}}`;
const asVector = (v: number[]) => `[${v.join(',')}]`;

/** Scales a vector to length 1, so that a dot product is the cosine similarity. */
export function normalise(v: number[]): number[] {
  const norm = Math.hypot(...v);
  return norm ? v.map((x) => x / norm) : v;
}

/**
 * Nearest passages by cosine similarity. Embeddings are stored as `real[]` on
 * every database; where the pgvector extension exists (PGlite always; a
 * PostgreSQL that has it installed), an HNSW index over them cast to
 * `vector(dims)` answers approximately and fast; elsewhere an exact scan gives
 * the same ranking, slower.
 */
export function createVectorIndex(db: Db, logger: Logger) {
  let mode: VectorMode = 'exact';
  let started: Promise<void> | undefined;
  const indexed = new Set<number>();

  /** Creates the extension where it can be (once): a PostgreSQL without it is told, and search scans exactly. */
  const start = () =>
    (started ??= db.execute(sql`create extension if not exists vector`).then(
      () => {
        mode = 'pgvector';
      },
      (err: unknown) => {
        mode = 'exact';
        logger.warn({ err: (err as Error).message }, 'the pgvector extension is not available: vector search scans every embedding (same results, slower); install pgvector for an HNSW index');
      },
    ));

  return {
    start,
    get mode() {
      return mode;
    },

    /** Makes sure embeddings of this many dimensions have their index (once per process; IF NOT EXISTS across them). */
    async ensure(dims: number): Promise<void> {
      await start();
      if (mode !== 'pgvector' || indexed.has(dims)) return;
      if (!Number.isInteger(dims) || dims < 1 || dims > 16_000) throw new Error(`cannot index ${dims}-dimensional embeddings`);
      await db.execute(
        sql.raw(`create index if not exists knowledge_chunks_embedding_${dims}_idx on knowledge_chunks using hnsw ((embedding::vector(${dims})) vector_cosine_ops) where dims = ${dims}`),
      );
      indexed.add(dims);
    },

    /** Up to `limit` passages nearest to `query` among those `where` allows: their ids and cosine similarity, best first. */
    async nearest(query: number[], where: SQL, limit: number): Promise<Array<{ id: string; similarity: number }>> {
      await start();
      const q = normalise(query);
      const dims = q.length;
      if (!Number.isInteger(dims) || dims < 1 || dims > 16_000) throw new Error(`cannot search ${dims}-dimensional embeddings`);
      // A literal, not a parameter: the partial index (where dims = N) is chosen only when the planner sees N.
      const n = sql.raw(String(dims));
      const rows =
        mode === 'pgvector'
          ? await db.execute(sql`
              select c.id, 1 - (c.embedding::vector(${n}) <=> ${asVector(q)}::vector(${n})) as similarity
              from knowledge_chunks c
              where c.dims = ${n} and ${where}
              order by c.embedding::vector(${n}) <=> ${asVector(q)}::vector(${n})
              limit ${limit}`)
          : await db.execute(sql`
              select c.id, (select sum(a * b) from unnest(c.embedding, ${asArray(q)}::real[]) as t(a, b)) as similarity
              from knowledge_chunks c
              where c.dims = ${n} and ${where}
              order by similarity desc
              limit ${limit}`);
      return (rows as unknown as { rows: Array<{ id: string; similarity: number | string }> }).rows.map((r) => ({ id: r.id, similarity: Number(r.similarity) }));
    },
  };
}

export type VectorIndex = ReturnType<typeof createVectorIndex>;
