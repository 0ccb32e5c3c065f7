import { sql, type SQL } from 'drizzle-orm';
import { inTransaction, type Db } from '../../platform/db/database.ts';
import type { Logger } from '../../platform/observability/logger.ts';

export type VectorMode = 'pgvector' | 'exact';

/** An embedding as PostgreSQL literals: `{…}` for real[], `[…]` for pgvector. */
const asArray = (v: number[]) => `{${v.join(',')}}`;
const asVector = (v: number[]) => `[${v.join(',')}]`;

const toHit = (r: { id: string; similarity: number | string }) => ({ id: r.id, similarity: Number(r.similarity) });

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
      const vector = sql`${asVector(q)}::vector(${n})`;
      const read = async (query: SQL, on: Db = db) => ((await on.execute(query)) as unknown as { rows: Array<{ id: string; similarity: number | string }> }).rows;
      if (mode === 'pgvector') {
        const distance = sql`c.embedding::vector(${n}) <=> ${vector}`;
        const nearestBy = (order: SQL, on?: Db) => read(sql`select c.id, 1 - (${distance}) as similarity from knowledge_chunks c where c.dims = ${n} and ${where} order by ${order} limit ${limit}`, on);
        const approximate = await inTransaction(db, async (tx) => {
          // The index's list of candidates as long as the answer asked for: pgvector's default (40) cut every longer one short.
          await tx.execute(sql`select set_config('hnsw.ef_search', ${String(Math.max(limit, 40))}, true)`);
          return nearestBy(distance, tx);
        });
        if (approximate.length >= limit) return approximate.map(toHit);
        // The index walks everyone's passages, nearest first, and filters after: when `where` keeps few of them (one
        // user's among many) it comes back short, though more of theirs match. Those few, compared one by one, are the
        // exact answer (`+ 0` keeps the planner off the index).
        return (await nearestBy(sql`(${distance}) + 0`)).map(toHit);
      }
      const rows = await read(sql`
              select c.id, (select sum(a * b) from unnest(c.embedding, ${asArray(q)}::real[]) as t(a, b)) as similarity
              from knowledge_chunks c
              where c.dims = ${n} and ${where}
              order by similarity desc
              limit ${limit}`);
      return rows.map(toHit);
    },
  };
}

export type VectorIndex = ReturnType<typeof createVectorIndex>;
