// npm run bench:tidy — the embedded database's upkeep (platform/db/maintenance.ts, the
// `database.tidy` schedule) on a messages-sized table: how long one pass holds the
// database (PGlite serves one statement at a time, so this is how long other
// requests wait), and how big a table that is rewritten again and again grows
// with and without it. BENCH_TIDY_ROWS: the table's rows (default 200,000).
import { cpus, loadavg } from 'node:os';
import { sql } from 'drizzle-orm';
import { openDatabase, type Db } from '../src/platform/db/database.ts';
import { tidy } from '../src/platform/db/maintenance.ts';

const ROWS = Number(process.env.BENCH_TIDY_ROWS ?? 200_000);
const ROUNDS = 10;

const database = openDatabase({ dataDir: 'memory://' });
const db = database.db;
const mb = async (table: string) => Number(((await db.execute(sql`select pg_total_relation_size(${table}::regclass) as n`)) as unknown as { rows: Array<{ n: string }> }).rows[0]!.n) / 1e6;
const timed = async (what: () => Promise<unknown>) => {
  const started = performance.now();
  const result = await what();
  return { ms: performance.now() - started, result };
};

async function table(name: string, rows: number) {
  const t = sql.identifier(name);
  await db.execute(sql`create table ${t} (id uuid primary key default gen_random_uuid(), conversation int not null, body text not null, created_at timestamptz not null default now())`);
  await db.execute(sql`create index on ${t} (conversation, created_at)`);
  await db.execute(sql`insert into ${t} (conversation, body) select g % 1000, repeat('word ', 60) from generate_series(1, ${rows}) g`);
}

console.log(`${cpus().length} × ${cpus()[0]?.model}, load average ${loadavg()[0]!.toFixed(1)}; ${ROWS.toLocaleString('en')} rows\n`);
await table('messages', ROWS);
const analyzed = await timed(() => tidy(db));
await db.execute(sql`delete from messages where id in (select id from messages order by id limit ${Math.round(ROWS / 4)})`);
const vacuumed = await timed(() => tidy(db));
const idle = await timed(() => tidy(db));
console.log('| pass | what it did | ms (the database held) |');
console.log('|---|---|--:|');
const did = (r: unknown) => JSON.stringify(r).replaceAll('"', '');
console.log(`| after filling the table | ${did(analyzed.result)} | ${analyzed.ms.toFixed(0)} |`);
console.log(`| after deleting a quarter | ${did(vacuumed.result)} | ${vacuumed.ms.toFixed(0)} |`);
console.log(`| nothing changed since | ${did(idle.result)} | ${idle.ms.toFixed(1)} |`);

// A queue's life: every row of a smaller table rewritten, ROUNDS times, untended and tidied between rounds.
const churnRows = Math.round(ROWS / 10);
async function churn(name: string, between: (db: Db) => Promise<unknown>) {
  await table(name, churnRows);
  await tidy(db);
  const before = await mb(name);
  for (let round = 0; round < ROUNDS; round++) {
    await db.execute(sql`update ${sql.identifier(name)} set body = body || '.'`);
    await between(db);
  }
  return { before, after: await mb(name) };
}
const untended = await churn('untended', async () => {});
const tended = await churn('tended', tidy);
console.log(`\n| ${churnRows.toLocaleString('en')} rows rewritten ${ROUNDS} times | MB before | MB after | growth |`);
console.log('|---|--:|--:|--:|');
for (const [name, r] of [['untended', untended], ['tidied after each round', tended]] as const) {
  console.log(`| ${name} | ${r.before.toFixed(1)} | ${r.after.toFixed(1)} | ${(r.after / r.before).toFixed(1)}× |`);
}
await database.close();
