// npm run bench:scale:reports — do usage reports and admin views stay flat as
// history grows? Seeds usage events (100k, 1M, 10M), users (1k, 10k, 100k),
// their API request counts and what they store, in bulk with generate_series,
// runs the scheduled work (the daily usage rollup, the storage rollup when
// there is one) as the scheduler would, then times each report and admin
// endpoint over real HTTP (p50/p99) at each size and prints the ratio of each
// figure to the smallest size's. Each size adds to the one before.
//
// PostgreSQL (DATABASE_URL, REDIS_URL) goes to 10M events; PGlite (no env)
// stops at 1M: single-threaded WASM takes minutes per million rows seeded.
// Exported for bench/scale.ts: `reportsScale(opts)` returns the rows it prints.
import { sql } from 'drizzle-orm';
import { startApp, type TestApp } from '../test/support/app.ts';
import { createUser, type TestUser } from '../test/support/factories.ts';

export interface ReportsScaleOpts {
  /** Defaults: postgres when DATABASE_URL is set. */
  backend?: 'embedded' | 'postgres';
  /** Sizes, smallest first; defaults per backend (PGlite stops at 1M events). */
  sizes?: Array<{ events: number; users: number }>;
  /** Requests per endpoint and size (fewer when one takes long: see budgetMs). */
  requests?: number;
  /** Time one endpoint may take at one size before it stops at what it has (at least 5 requests). */
  budgetMs?: number;
  log?: (line: string) => void;
}

export interface Row {
  backend: string;
  events: number;
  users: number;
  endpoint: string;
  requests: number;
  p50: number;
  p99: number;
  /** p99 over the smallest size's p99. */
  ratio: number;
}

const DAYS = 90;
const MODELS = ['openai:gpt-4o-mini', 'openai:gpt-4o', 'anthropic:claude-sonnet-4', 'anthropic:claude-haiku-4', 'mistral:mistral-large', 'local:qwen3'];
const ROUTES = ['POST /v1/chat/completions', 'GET /v1/conversations', 'POST /v1/conversations/:id/messages', 'GET /v1/usage', 'POST /v1/files', 'GET /v1/models'];

const DEFAULT_SIZES = {
  postgres: [
    { events: 100_000, users: 1_000 },
    { events: 1_000_000, users: 10_000 },
    { events: 10_000_000, users: 100_000 },
  ],
  embedded: [
    { events: 100_000, users: 1_000 },
    { events: 1_000_000, users: 10_000 },
  ],
};

const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)]!;
};
const dayAgo = (n: number) => new Date(Date.now() - n * 86_400_000).toISOString().slice(0, 10);

/**
 * Seeded user k (k ≥ 1) is made from `'u' || k`; user 0 is the signed-in bench user, so
 * the user-facing reports read someone with real history. Events lean towards
 * low k (random()^2), as usage does towards a few heavy users.
 */
/** A valid (version 7, RFC variant) UUID made from a seed, so the API's own schemas accept it. */
const uid = (seed: string) => `overlay(overlay(md5(${seed}) placing '7' from 13) placing '8' from 17)::uuid`;
const userOf = (k: string, me: string) => `(case when ${k} = 0 then '${me}'::uuid else ${uid(`'u' || ${k}`)} end)`;

async function seed(t: TestApp, me: TestUser, from: { events: number; users: number }, to: { events: number; users: number }, log: (l: string) => void) {
  const db = t.deps.db;
  const started = Date.now();
  if (to.users > from.users) {
    await db.execute(sql.raw(`
      insert into users (id, email, name, password_hash, created_at, updated_at)
      select ${uid(`'u' || k`)}, 'bench-user-' || k || '@example.com', 'Bench user ' || k, null, now(), now()
        from generate_series(${Math.max(1, from.users)}, ${to.users - 1}) k`));
    // What they store: a conversation each with two messages (chat's footprint sources).
    await db.execute(sql.raw(`
      insert into conversations (id, user_id, title)
      select ${uid(`'c' || k`)}, ${uid(`'u' || k`)}, 'Conversation of user ' || k
        from generate_series(${Math.max(1, from.users)}, ${to.users - 1}) k`));
    await db.execute(sql.raw(`
      insert into messages (id, conversation_id, user_id, role, content, text)
      select ${uid(`'m' || k || '-' || i`)}, ${uid(`'c' || k`)}, ${uid(`'u' || k`)}, case when i = 0 then 'user' else 'assistant' end,
             '[]'::jsonb, repeat('word ', 20 + (k % 50))
        from generate_series(${Math.max(1, from.users)}, ${to.users - 1}) k, generate_series(0, 1) i`));
  }
  const users = to.users;
  const batch = 1_000_000;
  for (let start = from.events; start < to.events; start += batch) {
    const end = Math.min(to.events, start + batch);
    // Spread over the last DAYS days (today included), six models, two keys and a project per user (some calls without).
    await db.execute(sql.raw(`
      insert into usage_events (id, occurred_at, user_id, api_key_id, project_id, source, provider, model, input_tokens, output_tokens, cached_tokens, cost_micros, latency_ms, ttft_ms, status)
      select ${uid(`'e' || i`)}, now() - random() * interval '${DAYS} days', ${userOf('u', me.id)},
             case when i % 3 = 0 then null else ${uid(`'k' || u || '-' || (i % 2)`)} end,
             case when i % 4 = 0 then ${uid(`'p' || u`)} else null end,
             'gateway', split_part(m, ':', 1), split_part(m, ':', 2), 200 + (i % 800), 50 + (i % 300), i % 100,
             case when m = 'local:qwen3' then null else 100 + (i % 5000) end, 300 + (i % 2000), 80 + (i % 400),
             case when i % 50 = 0 then 'failed' else 'ok' end
        from (select i, floor(${users} * random() ^ 2)::int as u, (array['${MODELS.join("','")}'])[1 + (i % ${MODELS.length})] as m
                from generate_series(${start}, ${end - 1}) i) s`));
  }
  // API request counts: one row per (day, user, route), about one for every five events.
  const rows = Math.floor((to.events - from.events) / 5);
  await db.execute(sql.raw(`
    insert into api_requests_daily (day, user_id, method, route, requests, bytes_in, bytes_out)
    select day, user_id, split_part(r, ' ', 1), split_part(r, ' ', 2), count(*) * 3, count(*) * 400, count(*) * 4000
      from (select day, ${userOf('u', me.id)} as user_id, r
              from (select (now() - random() * interval '${DAYS} days')::date as day, floor(${users} * random() ^ 2)::int as u,
                           (array['${ROUTES.join("','")}'])[1 + (i % ${ROUTES.length})] as r
                      from generate_series(1, ${rows}) i) g) s
     group by day, user_id, r
    on conflict on constraint api_requests_daily_key do update set requests = api_requests_daily.requests + excluded.requests,
       bytes_in = api_requests_daily.bytes_in + excluded.bytes_in, bytes_out = api_requests_daily.bytes_out + excluded.bytes_out`));
  // The per-route counts across users, where this version keeps them (the recorder writes both; the bench seeds the first).
  const routes = (await db.execute(sql`select to_regclass('api_requests_daily_routes') is not null as present`)) as unknown as { rows: Array<{ present: boolean }> };
  if (routes.rows[0]?.present) {
    await db.execute(sql`delete from api_requests_daily_routes`);
    await db.execute(sql`insert into api_requests_daily_routes (day, method, route, requests, bytes_in, bytes_out)
      select day, method, route, sum(requests), sum(bytes_in), sum(bytes_out) from api_requests_daily group by day, method, route`);
  }
  await db.execute(sql`analyze`);
  const seeded = Date.now();
  // What the scheduler keeps: the seeded history lands in the past, so every day is rolled again.
  await db.execute(sql`delete from usage_daily`);
  await t.services.usage.reports.rollup(new Date());
  const footprint = t.services.footprint as { refresh?: () => Promise<unknown> };
  if (footprint.refresh) await footprint.refresh();
  await db.execute(sql`analyze`);
  log(`  seeded to ${to.events.toLocaleString('en')} events / ${to.users.toLocaleString('en')} users in ${((seeded - started) / 1000).toFixed(0)} s, scheduled rollups ${((Date.now() - seeded) / 1000).toFixed(0)} s`);
}

function endpoints(me: TestUser, admin: TestUser): Array<{ name: string; path: string; token: string }> {
  const month = `from=${dayAgo(29)}&to=${dayAgo(0)}`;
  return [
    { name: 'GET /v1/usage (30 days, by day)', path: `/v1/usage?${month}&groupBy=day`, token: me.accessToken },
    { name: 'GET /v1/usage (30 days, by model)', path: `/v1/usage?${month}&groupBy=model`, token: me.accessToken },
    { name: 'GET /v1/usage/requests (30 days, by day)', path: `/v1/usage/requests?${month}&groupBy=day`, token: me.accessToken },
    { name: 'GET /v1/usage/storage', path: '/v1/usage/storage', token: me.accessToken },
    { name: 'GET /v1/admin/usage (30 days, by day)', path: `/v1/admin/usage?${month}&groupBy=day`, token: admin.accessToken },
    { name: 'GET /v1/admin/usage (30 days, by model)', path: `/v1/admin/usage?${month}&groupBy=model`, token: admin.accessToken },
    { name: 'GET /v1/admin/usage (one user, by day and model)', path: `/v1/admin/usage?${month}&userId=${me.id}&groupBy=day,model`, token: admin.accessToken },
    { name: 'GET /v1/admin/usage/export (one user, 30 days)', path: `/v1/admin/usage/export?${month}&userId=${me.id}`, token: admin.accessToken },
    { name: 'GET /v1/admin/usage/requests (30 days, by day)', path: `/v1/admin/usage/requests?${month}&groupBy=day`, token: admin.accessToken },
    { name: 'GET /v1/admin/usage/requests (one user, by route)', path: `/v1/admin/usage/requests?${month}&userId=${me.id}&groupBy=route`, token: admin.accessToken },
    { name: 'GET /v1/admin/usage/storage (top 25)', path: '/v1/admin/usage/storage?limit=25', token: admin.accessToken },
    { name: 'GET /v1/admin/usage/storage (one user)', path: `/v1/admin/usage/storage?userId=${me.id}`, token: admin.accessToken },
    { name: 'GET /v1/admin/users (first 25)', path: '/v1/admin/users?limit=25', token: admin.accessToken },
    { name: 'GET /v1/admin/users (email search)', path: '/v1/admin/users?limit=25&email=bench-user-77', token: admin.accessToken },
    { name: 'GET /v1/admin/users (admins)', path: '/v1/admin/users?limit=25&role=admin', token: admin.accessToken },
  ];
}

async function time(t: TestApp, e: { path: string; token: string }, requests: number, budgetMs: number) {
  const times: number[] = [];
  const started = performance.now();
  while (times.length < requests && (times.length < 5 || performance.now() - started < budgetMs)) {
    const at = performance.now();
    const res = await t.api('GET', e.path, { token: e.token });
    times.push(performance.now() - at);
    if (res.status !== 200) throw new Error(`${e.path}: ${res.status} ${res.text.slice(0, 300)}`);
  }
  return times;
}

export async function reportsScale(opts: ReportsScaleOpts = {}): Promise<Row[]> {
  const backend = opts.backend ?? (process.env.DATABASE_URL ? 'postgres' : 'embedded');
  const sizes = opts.sizes ?? DEFAULT_SIZES[backend];
  const requests = opts.requests ?? 50;
  const budgetMs = opts.budgetMs ?? 8_000;
  const log = opts.log ?? ((l: string) => console.log(l));
  const t = await startApp({ backend, env: { ACCESS_TOKEN_TTL_SECONDS: '86400', AUTH_RATE_LIMIT_PER_IP: '1000000000', RATE_LIMIT_ENABLED: 'false' } });
  const rows: Row[] = [];
  try {
    const admin = await createUser(t, { admin: true });
    const me = await createUser(t);
    let before = { events: 0, users: 1 };
    for (const size of sizes) {
      await seed(t, me, before, size, log);
      before = size;
      for (const e of endpoints(me, admin)) {
        await t.api('GET', e.path, { token: e.token }); // warm: plans, caches, connections
        const times = await time(t, e, requests, budgetMs);
        const first = rows.find((r) => r.endpoint === e.name);
        const row: Row = { backend, events: size.events, users: size.users, endpoint: e.name, requests: times.length, p50: pct(times, 50), p99: pct(times, 99), ratio: 1 };
        row.ratio = first ? row.p99 / first.p99 : 1;
        rows.push(row);
        log(`  ${e.name.padEnd(52)} n=${String(times.length).padStart(2)}  p50 ${row.p50.toFixed(1).padStart(7)} ms  p99 ${row.p99.toFixed(1).padStart(7)} ms  ×${row.ratio.toFixed(2)}`);
      }
    }
  } finally {
    await t.close();
  }
  return rows;
}

/** The rows as a Markdown table: p50 / p99 per size, and the p99 ratio of the largest to the smallest. */
export function reportsTable(rows: Row[]): string[] {
  const sizes = [...new Set(rows.map((r) => r.events))];
  const out = [`| endpoint | ${sizes.map((s) => `p50 / p99 ms at ${s.toLocaleString('en')}`).join(' | ')} | p99 ratio |`, `|---|${sizes.map(() => '---:').join('|')}|---:|`];
  for (const name of [...new Set(rows.map((r) => r.endpoint))]) {
    const of = rows.filter((r) => r.endpoint === name);
    out.push(`| ${name} | ${of.map((r) => `${r.p50.toFixed(1)} / ${r.p99.toFixed(1)}`).join(' | ')} | ×${of[of.length - 1]!.ratio.toFixed(2)} |`);
  }
  return out;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const backend = process.env.DATABASE_URL ? 'postgres' : 'embedded';
  console.log(`reports at scale [${backend}], sizes: ${DEFAULT_SIZES[backend].map((s) => `${s.events.toLocaleString('en')} events / ${s.users.toLocaleString('en')} users`).join(', ')}`);
  console.log(`\n${reportsTable(await reportsScale({ backend })).join('\n')}`);
}
