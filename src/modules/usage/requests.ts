import { sql, type SQL } from 'drizzle-orm';
import type { Db } from '../../platform/db/database.ts';
import { apiRequestsDaily, apiRequestsDailyRoutes } from './schema.ts';

export const REQUEST_GROUPS = ['day', 'route', 'user'] as const;
export type RequestGroup = (typeof REQUEST_GROUPS)[number];

export interface RequestsQuery {
  /** UTC days, inclusive. */
  from: string;
  to: string;
  groupBy: RequestGroup[];
  userId?: string;
}

export interface RequestsRow {
  day?: string;
  method?: string;
  route?: string;
  userId?: string | null;
  requests: number;
  bytesIn: number;
  bytesOut: number;
}

type Table = typeof apiRequestsDaily | typeof apiRequestsDailyRoutes;
// A route is only meaningful with its method: GET and DELETE /v1/conversations/:id are different calls.
const columns = (r: Table): Partial<Record<RequestGroup, Array<[alias: keyof RequestsRow, column: SQL]>>> => ({
  day: [['day', sql`${r.day}::text`]],
  route: [['method', sql`${r.method}`], ['route', sql`${r.route}`]],
  ...('userId' in r ? { user: [['userId', sql`${r.userId}`]] as Array<[keyof RequestsRow, SQL]> } : {}),
});

/**
 * API requests and bytes per day, route and user, from the per-day counts the
 * recorder keeps (per user, and per route across users): current to its last
 * flush (about a second).
 */
export function createRequestReports(db: Db) {
  return {
    async report(q: RequestsQuery): Promise<RequestsRow[]> {
      // Across users, not by user: the per-route counts, whose size does not grow with users.
      const r: Table = q.userId || q.groupBy.includes('user') ? apiRequestsDaily : apiRequestsDailyRoutes;
      const byGroup = columns(r);
      const groups = q.groupBy.flatMap((g) => byGroup[g] ?? []);
      const keys = groups.map(([, column]) => column);
      const rows = await db
        .select({
          ...Object.fromEntries(groups.map(([alias, column]) => [alias, column])),
          requests: sql<string>`coalesce(sum(${r.requests}), 0)::bigint`,
          bytesIn: sql<string>`coalesce(sum(${r.bytesIn}), 0)::bigint`,
          bytesOut: sql<string>`coalesce(sum(${r.bytesOut}), 0)::bigint`,
        })
        .from(r)
        .where(sql`${r.day} between ${q.from}::date and ${q.to}::date ${q.userId && 'userId' in r ? sql`and ${r.userId} = ${q.userId}` : sql``}`)
        .groupBy(...keys)
        .orderBy(...keys);
      return rows.map((row) => ({ ...row, requests: Number(row.requests), bytesIn: Number(row.bytesIn), bytesOut: Number(row.bytesOut) }) as RequestsRow);
    },
  };
}

export type RequestReports = ReturnType<typeof createRequestReports>;
