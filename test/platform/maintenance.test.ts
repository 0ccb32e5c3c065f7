import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { sql } from 'drizzle-orm';
import { openDatabase, type Database } from '../../src/platform/db/database.ts';
import { tidy } from '../../src/platform/db/maintenance.ts';

const rows = (result: unknown) => (result as { rows: Array<Record<string, any>> }).rows;

let database: Database;
before(() => {
  database = openDatabase({ dataDir: 'memory://' });
});
after(() => database.close());

const sizeOf = async (table: string) => Number(rows(await database.db.execute(sql`select pg_total_relation_size(${table}::regclass) as n`))[0]!.n);

test('on the embedded database, a table that churns stops growing once tidied, and a table filled is analyzed; an idle one is left alone', async () => {
  const db = database.db;
  for (const table of ['churned', 'untended']) {
    await db.execute(sql`create table ${sql.identifier(table)} (id int primary key, note text)`);
    await db.execute(sql`insert into ${sql.identifier(table)} select g, 'note ' || g from generate_series(1, 2000) g`);
  }
  const first = await tidy(db);
  assert.deepEqual([...first.vacuumed, ...first.analyzed].sort(), ['public.churned', 'public.untended'], 'new rows: both analyzed');
  assert.equal(rows(await db.execute(sql`select count(*)::int as n from pg_stats where tablename = 'churned'`))[0]!.n, 2, 'the planner has statistics for each column');

  // A queue's life: every row rewritten, again and again. Untended, each round adds a table's worth of dead rows.
  const rewrite = async (table: string) => db.execute(sql`update ${sql.identifier(table)} set note = note || '.'`);
  const untendedAt = await sizeOf('untended');
  for (let round = 0; round < 12; round++) await rewrite('untended');
  const untended = (await sizeOf('untended')) / untendedAt;
  // Tidied between rounds, their room is reused.
  const churnedAt = await sizeOf('churned');
  for (let round = 0; round < 12; round++) {
    await rewrite('churned');
    assert.ok((await tidy(db)).vacuumed.includes('public.churned'), `round ${round}: vacuumed`);
  }
  const churned = (await sizeOf('churned')) / churnedAt;
  assert.ok(untended > 6, `untended: ${untended.toFixed(1)}× its size`);
  assert.ok(churned < 2.5, `tidied: ${churned.toFixed(1)}× its size`);

  const idle = await tidy(db);
  assert.deepEqual(idle, { vacuumed: [], analyzed: [] }, 'nothing changed since: nothing done');
});
