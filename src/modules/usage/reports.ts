import { sql, type SQL } from 'drizzle-orm';
import type { Db } from '../../platform/db/database.ts';
import { usageDaily, usageDailyModels, usageEvents, usageRecentModels } from './schema.ts';

export const GROUPS = ['day', 'model', 'project', 'api_key', 'user'] as const;
export type Group = (typeof GROUPS)[number];

/** Days per query of a billing export. */
const EXPORT_DAYS = 7;

const addDays = (day: string, n: number) => new Date(Date.parse(`${day}T00:00:00Z`) + n * 86_400_000).toISOString().slice(0, 10);
export const nextDay = (day: string) => addDays(day, 1);

/** Rolled days rolled again by the next rollup, for events that arrive after their day was rolled. */
const REROLL_DAYS = 2;

/**
 * How far behind the rollup's own time the recent per-model totals stop: an event is written up to a metering
 * flush after it happened (a second, usually), and one that was not there yet would be missed until the next run.
 */
const RECENT_LAG_MS = 5 * 60_000;

export interface ReportQuery {
  /** UTC days, inclusive: `2026-11-01` … `2026-11-30`. */
  from: string;
  to: string;
  groupBy: Group[];
  userId?: string;
  projectId?: string;
  apiKeyId?: string;
  /** `provider:model` */
  model?: string;
}

export interface ReportRow {
  day?: string;
  provider?: string;
  model?: string;
  projectId?: string | null;
  apiKeyId?: string | null;
  userId?: string;
  requests: number;
  failed: number;
  inputTokens: number;
  outputTokens: number;
  cachedTokens: number;
  costMicros: number;
  /** Calls whose price was unknown; their cost is not in costMicros. */
  unpricedRequests: number;
}

const COLUMNS: Record<Group, SQL[]> = {
  day: [sql`u.day`],
  model: [sql`u.provider`, sql`u.model`],
  project: [sql`u.project_id`],
  api_key: [sql`u.api_key_id`],
  user: [sql`u.user_id`],
};
const ALIASES: Record<Group, string[]> = { day: ['day'], model: ['provider', 'model'], project: ['projectId'], api_key: ['apiKeyId'], user: ['userId'] };

/**
 * Usage reports. Complete days come from the daily rollups; days after the
 * last rolled-up one straight from the events, so reports are current to the
 * last metering flush while staying fast over months of history. Across
 * users, those days come from their per-model totals as of the last hourly
 * run (usage_recent_models), and only the events since from the table.
 */
export function createReports(db: Db) {
  async function rolledThrough(): Promise<string | null> {
    const [row] = await db.select({ day: sql<string | null>`max(${usageDaily.day})::text` }).from(usageDaily);
    return row?.day ?? null;
  }

  async function report(q: ReportQuery): Promise<ReportRow[]> {
    const through = (await rolledThrough()) ?? '0001-01-01';
    const [provider, ...rest] = q.model?.split(':') ?? [];
    const model = rest.join(':');
    const filters = (t: { userId: SQL; projectId: SQL; apiKeyId: SQL; provider: SQL; model: SQL }) => {
      const f: SQL[] = [];
      if (q.userId) f.push(sql`${t.userId} = ${q.userId}`);
      if (q.projectId) f.push(sql`${t.projectId} = ${q.projectId}`);
      if (q.apiKeyId) f.push(sql`${t.apiKeyId} = ${q.apiKeyId}`);
      if (q.model) f.push(sql`${t.provider} = ${provider} and ${t.model} = ${model}`);
      return f.length ? sql` and ${sql.join(f, sql` and `)}` : sql``;
    };
    const d = usageDaily;
    const m = usageDailyModels;
    const e = usageEvents;
    const eventDay = sql`(${e.occurredAt} at time zone 'UTC')::date`;
    // Across every user, by day and/or model: the per-model totals, whose size does not grow with users.
    const acrossUsers = !q.userId && !q.projectId && !q.apiKeyId && q.groupBy.every((g) => g === 'day' || g === 'model');
    // Across users, the days after the rolled ones too: their per-model totals up to `rolledTo`, then the events since.
    const r = usageRecentModels;
    const [recent] = acrossUsers ? await db.select({ rolledTo: sql<string | null>`max(${r.rolledTo})::text` }).from(r).where(sql`${r.day} > ${through}::date`) : [];
    const rolledTo = recent?.rolledTo ?? null;
    const recentRows = rolledTo
      ? sql`
      union all
      select ${r.day}::text, null::uuid, null::uuid, null::uuid, ${r.provider}, ${r.model}, ${r.requests}, ${r.failed}, ${r.inputTokens}, ${r.outputTokens},
             ${r.cachedTokens}, ${r.costMicros}, ${r.unpricedRequests}
        from ${r}
       where ${r.day} between ${q.from}::date and ${q.to}::date and ${r.day} > ${through}::date and ${r.rolledTo} = ${rolledTo}::timestamptz
             ${filters({ userId: sql``, projectId: sql``, apiKeyId: sql``, provider: sql`${r.provider}`, model: sql`${r.model}` })}`
      : sql``;
    const rolled = acrossUsers
      ? sql`
      select ${m.day}::text as day, null::uuid as user_id, null::uuid as api_key_id, null::uuid as project_id, ${m.provider} as provider, ${m.model} as model,
             ${m.requests} as requests, ${m.failed} as failed, ${m.inputTokens} as input_tokens, ${m.outputTokens} as output_tokens,
             ${m.cachedTokens} as cached_tokens, ${m.costMicros} as cost_micros, ${m.unpricedRequests} as unpriced
        from ${m}
       where ${m.day} between ${q.from}::date and ${q.to}::date and ${m.day} <= ${through}::date
             ${filters({ userId: sql``, projectId: sql``, apiKeyId: sql``, provider: sql`${m.provider}`, model: sql`${m.model}` })}`
      : sql`
      select ${d.day}::text as day, ${d.userId} as user_id, ${d.apiKeyId} as api_key_id, ${d.projectId} as project_id, ${d.provider} as provider, ${d.model} as model,
             ${d.requests}::bigint as requests, ${d.failed}::bigint as failed, ${d.inputTokens} as input_tokens, ${d.outputTokens} as output_tokens,
             ${d.cachedTokens} as cached_tokens, ${d.costMicros} as cost_micros, ${d.unpricedRequests}::bigint as unpriced
        from ${d}
       where ${d.day} between ${q.from}::date and ${q.to}::date and ${d.day} <= ${through}::date
             ${filters({ userId: sql`${d.userId}`, projectId: sql`${d.projectId}`, apiKeyId: sql`${d.apiKeyId}`, provider: sql`${d.provider}`, model: sql`${d.model}` })}`;
    const rows = sql`${rolled}${recentRows}
      union all
      select ${eventDay}::text, ${e.userId}, ${e.apiKeyId}, ${e.projectId}, ${e.provider}, ${e.model},
             1, (${e.status} <> 'ok')::int, ${e.inputTokens}, ${e.outputTokens}, ${e.cachedTokens}, coalesce(${e.costMicros}, 0), (${e.costMicros} is null)::int
        from ${e}
       where ${e.occurredAt} >= greatest(greatest(${q.from}::date, ${through}::date + 1)::timestamp at time zone 'UTC', ${rolledTo}::timestamptz)
         and ${e.occurredAt} < (${q.to}::date + 1)::timestamp at time zone 'UTC'
             ${filters({ userId: sql`${e.userId}`, projectId: sql`${e.projectId}`, apiKeyId: sql`${e.apiKeyId}`, provider: sql`${e.provider}`, model: sql`${e.model}` })}`;
    const groups = q.groupBy.flatMap((g) => COLUMNS[g]);
    const aliases = q.groupBy.flatMap((g) => ALIASES[g]);
    const select = groups.length ? sql`${sql.join(groups, sql`, `)}, ` : sql``;
    const groupBy = groups.length ? sql`group by ${sql.join(groups, sql`, `)} order by ${sql.join(groups, sql`, `)}` : sql``;
    // Both drivers (node-postgres, PGlite) answer execute() with `{ rows }`; Drizzle types it per driver.
    const result = (await db.execute(sql`
      select ${select}
             coalesce(sum(u.requests), 0)::bigint as requests, coalesce(sum(u.failed), 0)::bigint as failed,
             coalesce(sum(u.input_tokens), 0)::bigint as input_tokens, coalesce(sum(u.output_tokens), 0)::bigint as output_tokens,
             coalesce(sum(u.cached_tokens), 0)::bigint as cached_tokens, coalesce(sum(u.cost_micros), 0)::bigint as cost_micros,
             coalesce(sum(u.unpriced), 0)::bigint as unpriced
        from (${rows}) as u
      ${groupBy}`)) as unknown as { rows: Record<string, unknown>[] };
    return result.rows.map((r) => {
      const values = Object.values(r);
      const out: Record<string, unknown> = {};
      aliases.forEach((a, i) => (out[a] = values[i] ?? null));
      return {
        ...out,
        requests: Number(r.requests),
        failed: Number(r.failed),
        inputTokens: Number(r.input_tokens),
        outputTokens: Number(r.output_tokens),
        cachedTokens: Number(r.cached_tokens),
        costMicros: Number(r.cost_micros),
        unpricedRequests: Number(r.unpriced),
      } as ReportRow;
    });
  }

  /**
   * Rolls up every complete UTC day after the last rolled-up one (or since the
   * first event) through yesterday, per user, key, project and model and then
   * per model alone (usage_daily_models, from the first), and rolls the last
   * REROLL_DAYS rolled days again: an event stamped with a day that reaches the
   * table after that day was rolled (a metering flush around midnight, a long
   * job's usage) is counted then, where reports would otherwise never see it.
   * Idempotent: a day rolled twice is recomputed, not added twice. Returns the
   * days rolled.
   */
  async function rollup(now = new Date()): Promise<string[]> {
    const yesterday = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate() - 1)).toISOString().slice(0, 10);
    let start = await rolledThrough();
    if (start) start = addDays(start, 1 - REROLL_DAYS);
    else {
      const [first] = await db.select({ at: sql<string | null>`min(${usageEvents.occurredAt} at time zone 'UTC')::date::text` }).from(usageEvents);
      if (!first?.at) return [];
      start = first.at;
    }
    const days: string[] = [];
    for (let day = start; day <= yesterday; day = nextDay(day)) {
      const e = usageEvents;
      await db.execute(sql`
        insert into ${usageDaily} (day, user_id, api_key_id, project_id, provider, model, requests, failed, input_tokens, output_tokens, cached_tokens, cost_micros, unpriced_requests)
        select ${day}::date, ${e.userId}, ${e.apiKeyId}, ${e.projectId}, ${e.provider}, ${e.model}, count(*), count(*) filter (where ${e.status} <> 'ok'),
               sum(${e.inputTokens}), sum(${e.outputTokens}), sum(${e.cachedTokens}), coalesce(sum(${e.costMicros}), 0), count(*) filter (where ${e.costMicros} is null)
          from ${e}
         where ${e.occurredAt} >= ${day}::date::timestamp at time zone 'UTC' and ${e.occurredAt} < (${day}::date + 1)::timestamp at time zone 'UTC'
         group by ${e.userId}, ${e.apiKeyId}, ${e.projectId}, ${e.provider}, ${e.model}
        on conflict on constraint usage_daily_key do update set
          requests = excluded.requests, failed = excluded.failed, input_tokens = excluded.input_tokens, output_tokens = excluded.output_tokens,
          cached_tokens = excluded.cached_tokens, cost_micros = excluded.cost_micros, unpriced_requests = excluded.unpriced_requests`);
      const d = usageDaily;
      await db.transaction(async (tx) => {
        await tx.delete(usageDailyModels).where(sql`${usageDailyModels.day} = ${day}::date`);
        await tx.execute(sql`
          insert into ${usageDailyModels} (day, provider, model, requests, failed, input_tokens, output_tokens, cached_tokens, cost_micros, unpriced_requests)
          select ${d.day}, ${d.provider}, ${d.model}, sum(${d.requests}), sum(${d.failed}), sum(${d.inputTokens}), sum(${d.outputTokens}), sum(${d.cachedTokens}),
                 sum(${d.costMicros}), sum(${d.unpricedRequests})
            from ${d} where ${d.day} = ${day}::date
           group by ${d.day}, ${d.provider}, ${d.model}`);
      });
      days.push(day);
    }
    await rollRecent(now);
    return days;
  }

  /**
   * The per-model totals of the days after the rolled ones (usage_recent_models), from their first event up to a
   * few minutes before `now`, recomputed whole: an hour's run reads that day's events once, where every report
   * across users read them all. Late events of those hours are counted by the next run.
   */
  async function rollRecent(now: Date) {
    const through = await rolledThrough();
    const rolledTo = new Date(now.getTime() - RECENT_LAG_MS);
    const e = usageEvents;
    const start = through ? sql`(${through}::date + 1)::timestamp at time zone 'UTC'` : sql`'-infinity'::timestamptz`;
    await db.transaction(async (tx) => {
      await tx.delete(usageRecentModels);
      await tx.execute(sql`
        insert into ${usageRecentModels} (day, provider, model, requests, failed, input_tokens, output_tokens, cached_tokens, cost_micros, unpriced_requests, rolled_to)
        select (${e.occurredAt} at time zone 'UTC')::date, ${e.provider}, ${e.model}, count(*), count(*) filter (where ${e.status} <> 'ok'),
               sum(${e.inputTokens}), sum(${e.outputTokens}), sum(${e.cachedTokens}), coalesce(sum(${e.costMicros}), 0), count(*) filter (where ${e.costMicros} is null),
               ${rolledTo.toISOString()}::timestamptz
          from ${e}
         where ${e.occurredAt} >= ${start} and ${e.occurredAt} < ${rolledTo.toISOString()}::timestamptz
         group by 1, ${e.provider}, ${e.model}`);
    });
  }

  /**
   * Every row of a billing export, a week of UTC days at a time (rows come ordered by day first), so a year of
   * history never sits in memory at once and a month is a few queries, not thirty.
   */
  async function* exportRows(q: { from: string; to: string; userId?: string }): AsyncGenerator<ReportRow> {
    // Ends at `to` itself: the day after 9999-12-31 is written `+010000-01-01`, which sorts before it.
    for (let day = q.from; ; ) {
      let last = day;
      for (let i = 1; i < EXPORT_DAYS && last < q.to; i++) last = nextDay(last);
      yield* await report({ from: day, to: last, userId: q.userId, groupBy: ['day', 'user', 'api_key', 'project', 'model'] });
      if (last >= q.to) return;
      day = nextDay(last);
    }
  }

  return { report, rollup, rolledThrough, exportRows };
}

export type Reports = ReturnType<typeof createReports>;
