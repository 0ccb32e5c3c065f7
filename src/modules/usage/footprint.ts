import { sql, type SQL } from 'drizzle-orm';
import type { AnyPgColumn } from 'drizzle-orm/pg-core';
import type { Db } from '../../platform/db/database.ts';

/**
 * One kind of thing users store, declared by the module that owns its table
 * (usage never names another module's tables itself): one row per item in
 * `from`, its owner in `userId`, its size in `bytes`. Figures are computed
 * exactly, in SQL, when asked.
 */
export interface FootprintSource {
  /** What the figures are reported under: `messages`, `projects`, … */
  name: string;
  /** The table, or a join reaching the owner (a project's prompts). */
  from: SQL;
  userId: AnyPgColumn;
  /** One item's bytes. */
  bytes: SQL;
}

export interface SourceFigures {
  source: string;
  items: number;
  bytes: number;
}

export interface FootprintOfUser {
  userId: string;
  bytes: number;
  sources: SourceFigures[];
}

/** Where the admin listing resumes: after this user, who stored this many bytes. */
export interface FootprintCursor {
  bytes: number;
  userId: string;
}

type Row = { user_id: string; source: string; items: string; bytes: string };

/**
 * What users store now. Every source answers in one statement (`union all`), so
 * the figures are one consistent snapshot; a source with nothing for a user
 * reports zeros rather than going missing.
 */
export function createFootprintReport(db: Db, declared: FootprintSource[]) {
  // Reported by name, whatever order the modules declaring them are in.
  const sources = [...declared].sort((a, b) => a.name.localeCompare(b.name));
  const all = (userId?: string) =>
    sql.join(
      sources.map(
        (s) => sql`
          select ${s.name}::text as source, ${s.userId} as user_id, count(*)::bigint as items, coalesce(sum(${s.bytes}), 0)::bigint as bytes
            from ${s.from} ${userId ? sql`where ${s.userId} = ${userId}` : sql``}
           group by ${s.userId}`,
      ),
      sql` union all `,
    );

  const execute = async (query: SQL) => ((await db.execute(query)) as unknown as { rows: Row[] }).rows;

  function figuresOf(userId: string, rows: Row[]): FootprintOfUser {
    const found = new Map(rows.filter((r) => r.user_id === userId).map((r) => [r.source, r]));
    const figures = sources.map(({ name }) => ({ source: name, items: Number(found.get(name)?.items ?? 0), bytes: Number(found.get(name)?.bytes ?? 0) }));
    return { userId, bytes: figures.reduce((sum, f) => sum + f.bytes, 0), sources: figures };
  }

  return {
    /** One user's figures, zeros when they store nothing. */
    async of(userId: string): Promise<FootprintOfUser> {
      return figuresOf(userId, await execute(all(userId)));
    },

    /** Users by bytes stored, most first (ties by id); fetch `limit + 1` to know whether there is more. */
    async top(opts: { limit: number; after?: FootprintCursor }): Promise<FootprintOfUser[]> {
      const after = opts.after ? sql`where total < ${opts.after.bytes} or (total = ${opts.after.bytes} and user_id > ${opts.after.userId}::uuid)` : sql``;
      const rows = await execute(sql`
        with s as (${all()}),
             totals as (select user_id, sum(bytes)::bigint as total from s group by user_id),
             page as (select user_id, total from totals ${after} order by total desc, user_id limit ${opts.limit})
        select page.user_id, page.total, s.source, s.items, s.bytes
          from page join s on s.user_id = page.user_id
         order by page.total desc, page.user_id`);
      const users = [...new Set(rows.map((r) => r.user_id))];
      return users.map((userId) => figuresOf(userId, rows));
    },
  };
}

export type FootprintReport = ReturnType<typeof createFootprintReport>;
