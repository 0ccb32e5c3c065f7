import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { sql } from 'drizzle-orm';
import { date, integer, numeric, pgTable, timestamp } from 'drizzle-orm/pg-core';
import pg from 'pg';
import { inTransaction, openDatabase, preparedStatement } from '../../src/platform/db/database.ts';
import { freshPostgresDatabase } from '../support/app.ts';

const rows = (result: unknown) => (result as { rows: Array<Record<string, unknown>> }).rows;

describe('PostgreSQL pool', { skip: !process.env.DATABASE_URL && 'DATABASE_URL not set' }, () => {
  test('an idle connection killed by the server is reported, not a crash, and the next query reconnects', async () => {
    const fresh = await freshPostgresDatabase();
    const errors: Error[] = [];
    const database = openDatabase({ url: fresh.url, dataDir: 'memory://', poolSize: 1, onIdleError: (err) => errors.push(err) });
    try {
      const pid = rows(await database.db.execute(sql`select pg_backend_pid() as pid`))[0]!.pid;
      const admin = new pg.Client({ connectionString: fresh.url });
      await admin.connect();
      await admin.query('select pg_terminate_backend($1)', [pid]);
      await admin.end();
      while (!errors.length) await new Promise((r) => setTimeout(r, 10));
      assert.match(errors[0]!.message, /terminating connection/);

      const after = rows(await database.db.execute(sql`select pg_backend_pid() as pid`))[0]!.pid;
      assert.notEqual(after, pid, 'a new connection serves the next query');
    } finally {
      await database.close();
      await fresh.drop();
    }
  });
});

for (const backend of ['pglite', ...(process.env.DATABASE_URL ? ['postgres'] : [])] as const) {
  describe(`prepared statements written as SQL [${backend}]`, () => {
    test('one runs with its parameters (arrays and JSON included) on the database and inside a transaction, whose rollback takes its rows back', async () => {
      const fresh = backend === 'postgres' ? await freshPostgresDatabase() : undefined;
      const database = openDatabase({ url: fresh?.url, dataDir: 'memory://', poolSize: 2 });
      try {
        await database.db.execute(sql`create table items (id int primary key, tags text[] not null, data jsonb not null)`);
        const insert = preparedStatement<{ id: number; tags: string[]; n: number }>(
          'test_items_insert',
          'insert into items (id, tags, data) select $1, $2::text[], $3::jsonb returning id, tags, jsonb_array_length(data -> $4) as n',
        );
        const [row] = await insert(database.db, [1, ['a', 'b, "c"', 'ü'], JSON.stringify({ list: [1, 2, 3] }), 'list']);
        assert.deepEqual({ ...row }, { id: 1, tags: ['a', 'b, "c"', 'ü'], n: 3 });
        // The same name again, with other values: the statement is parsed once per connection, not remembered with its values.
        assert.equal((await insert(database.db, [2, [], '{"list":[]}', 'list']))[0]!.n, 0);
        await assert.rejects(
          inTransaction(database.db, async (tx) => {
            await insert(tx, [3, ['t'], '{"list":[9]}', 'list']);
            assert.equal(rows(await tx.execute(sql`select count(*)::int as n from items`))[0]!.n, 3);
            throw new Error('roll back');
          }),
          /roll back/,
        );
        assert.deepEqual(rows(await database.db.execute(sql`select id from items order by id`)).map((r) => r.id), [1, 2]);
      } finally {
        await database.close();
        await fresh?.drop();
      }
    });
  });
}

describe('Drizzle on PGlite', () => {
  test('reads timestamps, dates, intervals and arrays of them as PostgreSQL writes them, and typed columns as their types', async () => {
    const database = openDatabase({ dataDir: 'memory://' });
    try {
      const { db } = database;
      await db.execute(sql`create table stamps (id int primary key, at timestamptz not null, day date not null, span interval not null, amounts numeric[] not null, ats timestamptz[] not null)`);
      await db.execute(sql`insert into stamps values (1, '2026-01-02 03:04:05.678+00', '2026-01-02', '1 day 02:00:00', '{1.5,2}', array['2026-01-02 03:04:05+00'::timestamptz])`);
      await db.execute(sql`set time zone 'UTC'`);
      const [raw] = rows(await db.execute(sql`select at, day, span, amounts, ats from stamps`));
      assert.deepEqual({ ...raw }, { at: '2026-01-02 03:04:05.678+00', day: '2026-01-02', span: '1 day 02:00:00', amounts: '{1.5,2}', ats: '{"2026-01-02 03:04:05+00"}' });
      const stamps = pgTable('stamps', { id: integer('id').primaryKey(), at: timestamp('at', { withTimezone: true }).notNull(), day: date('day').notNull(), amounts: numeric('amounts').array().notNull() });
      const [typed] = await db.select().from(stamps);
      assert.equal(typed!.at.toISOString(), '2026-01-02T03:04:05.678Z');
      assert.deepEqual([typed!.day, typed!.amounts], ['2026-01-02', ['1.5', '2']]);
      // Inside a transaction too.
      await inTransaction(db, async (tx) => assert.equal((await tx.select().from(stamps))[0]!.at.getTime(), typed!.at.getTime()));
    } finally {
      await database.close();
    }
  });
});
