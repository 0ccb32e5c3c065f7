import { sql } from 'drizzle-orm';
import type { Db } from './database.ts';

export interface Tidied {
  /** Tables vacuumed (and analyzed), as `schema.table`. */
  vacuumed: string[];
  /** Tables only analyzed. */
  analyzed: string[];
}

/**
 * What autovacuum does for a PostgreSQL server, for the embedded database, which runs no background
 * workers: a table with enough dead rows is vacuumed (their room reused, so a table that churns, like
 * the job queue's, stops growing), and one changed enough is analyzed (fresh statistics keep the
 * planner on its indexes as rows pile up). PostgreSQL's default thresholds decide which tables; one
 * statement a table, so other queries run between them.
 */
export async function tidy(db: Db): Promise<Tidied> {
  // PGlite reports its activity counters only when idle, at most once a second: ask for them now.
  await db.execute(sql`select pg_stat_force_next_flush()`);
  const { rows } = (await db.execute(sql`
    select schema, "table", vacuum from (
      select schemaname as schema, relname as "table", n_dead_tup + n_mod_since_analyze as changed,
             n_dead_tup > 50 + 0.2 * n_live_tup as vacuum,
             n_mod_since_analyze > 50 + 0.1 * n_live_tup as "analyze"
        from pg_stat_user_tables) t
     where vacuum or "analyze"
     order by changed desc`)) as unknown as { rows: Array<{ schema: string; table: string; vacuum: boolean }> };
  const done: Tidied = { vacuumed: [], analyzed: [] };
  for (const r of rows) {
    const table = sql`${sql.identifier(r.schema)}.${sql.identifier(r.table)}`;
    if (r.vacuum) await db.execute(sql`vacuum (analyze) ${table}`);
    else await db.execute(sql`analyze ${table}`);
    (r.vacuum ? done.vacuumed : done.analyzed).push(`${r.schema}.${r.table}`);
  }
  return done;
}
