import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { sql } from 'drizzle-orm';
import pg from 'pg';
import { openDatabase } from '../../src/platform/db/database.ts';
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
