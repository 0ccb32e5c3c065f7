import { sql, type SQL } from 'drizzle-orm';
import type { AnyPgColumn } from 'drizzle-orm/pg-core';
import type { Db } from '../../platform/db/database.ts';
import { storageByUser, usageRefreshes } from './schema.ts';

/**
 * One kind of thing users store, declared by the module that owns its table
 * (usage never names another module's tables itself): one row per item in
 * `from`, its owner in `userId`, its size in `bytes`. One user's figures are
 * computed exactly, in SQL, when asked; the listing of every user reads the
 * per-user rollup (storage_by_user) the `usage.storage` schedule keeps.
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

/** A page of the listing, and how fresh its figures are: the oldest computation among them (or now, when empty). */
export interface FootprintPage {
  users: FootprintOfUser[];
  asOf: Date;
}

/**
 * What users store. Every source answers in one statement (`union all`), so
 * the figures are one consistent snapshot; a source with nothing for a user
 * reports zeros rather than going missing. One user's figures are exact when
 * asked (and refresh that user's row of the rollup); the listing reads the
 * rollup, refreshed whole by `refresh()` on a schedule, and at once when no
 * whole refresh has ever completed.
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

  const execute = async (query: SQL, tx: Db = db) => ((await tx.execute(query)) as unknown as { rows: Row[] }).rows;

  function figuresOf(userId: string, rows: Row[]): FootprintOfUser {
    const found = new Map(rows.filter((r) => r.user_id === userId).map((r) => [r.source, r]));
    const figures = sources.map(({ name }) => ({ source: name, items: Number(found.get(name)?.items ?? 0), bytes: Number(found.get(name)?.bytes ?? 0) }));
    return { userId, bytes: figures.reduce((sum, f) => sum + f.bytes, 0), sources: figures };
  }

  /** Every source, named as declared now (a source added since the row was written reads as zeros). */
  const fromRollup = (r: { userId: string; sources: SourceFigures[] }) => figuresOf(r.userId, r.sources.map((f) => ({ user_id: r.userId, source: f.source, items: String(f.items), bytes: String(f.bytes) })));

  /**
   * The rollup's rows, written from one statement over every source. Users with no items
   * have no row, as they are left out of the listing.
   */
  const rollupRows = (userId?: string) => sql`
    select user_id, sum(bytes)::bigint as bytes, jsonb_agg(jsonb_build_object('source', source, 'items', items, 'bytes', bytes) order by source) as sources, now() as computed_at
      from (${all(userId)}) s
     group by user_id`;

  /** Recomputes every user's row, in one transaction: readers see the old rollup or the new, never half. */
  async function refresh(): Promise<{ users: number }> {
    return db.transaction(async (tx) => {
      await tx.delete(storageByUser);
      const inserted = await execute(sql`insert into ${storageByUser} (user_id, bytes, sources, computed_at) ${rollupRows()} returning user_id`, tx as unknown as Db);
      await tx
        .insert(usageRefreshes)
        .values({ name: 'storage', refreshedAt: sql`now()` })
        .onConflictDoUpdate({ target: usageRefreshes.name, set: { refreshedAt: sql`now()` } });
      return { users: inserted.length };
    });
  }

  return {
    refresh,

    /** One user's figures, exact, zeros when they store nothing; that user's row of the rollup is brought up to date. */
    async of(userId: string): Promise<FootprintOfUser> {
      const figures = figuresOf(userId, await execute(all(userId)));
      const stored = figures.sources.some((f) => f.items > 0);
      if (!stored) await db.delete(storageByUser).where(sql`${storageByUser.userId} = ${userId}`);
      else
        await db
          .insert(storageByUser)
          .values({ userId, bytes: figures.bytes, sources: figures.sources, computedAt: sql`now()` })
          .onConflictDoUpdate({ target: storageByUser.userId, set: { bytes: figures.bytes, sources: figures.sources, computedAt: sql`now()` } });
      return figures;
    },

    /** Users by bytes stored, most first (ties by id), from the rollup; fetch `limit + 1` to know whether there is more. */
    async top(opts: { limit: number; after?: FootprintCursor }): Promise<FootprintPage> {
      const [done] = await db.select().from(usageRefreshes).where(sql`${usageRefreshes.name} = 'storage'`);
      if (!done) await refresh();
      const t = storageByUser;
      // `bytes <= X` bounds the index range; the rest picks up after the cursor among equal totals.
      const after = opts.after ? sql`${t.bytes} <= ${opts.after.bytes} and (${t.bytes} < ${opts.after.bytes} or ${t.userId} > ${opts.after.userId}::uuid)` : undefined;
      const rows = await db.select().from(t).where(after).orderBy(sql`${t.bytes} desc nulls last`, t.userId).limit(opts.limit);
      const asOf = rows.reduce<Date>((oldest, r) => (r.computedAt < oldest ? r.computedAt : oldest), new Date());
      return { users: rows.map(fromRollup), asOf };
    },
  };
}

export type FootprintReport = ReturnType<typeof createFootprintReport>;
