import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { describe, test } from 'node:test';
import { sql } from 'drizzle-orm';
import { openDatabase } from '../../src/platform/db/database.ts';
import { freshPostgresDatabase } from '../support/app.ts';

const migrationCount = readdirSync(new URL('../../db/migrations', import.meta.url)).filter((f) => f.endsWith('.sql')).length;

describe('migrations', () => {
  test('PGlite: applied once, re-running is a no-op', async () => {
    const database = openDatabase({ dataDir: 'memory://' });
    await database.migrate();
    await database.migrate();
    const rows = await database.db.execute(sql`select count(*)::int as n from drizzle.__drizzle_migrations`);
    assert.equal((rows as unknown as { rows: { n: number }[] }).rows[0]!.n, migrationCount);
    await database.close();
  });

  test('PostgreSQL: instances migrating at the same time take turns', { skip: !process.env.DATABASE_URL && 'DATABASE_URL not set' }, async () => {
    const fresh = await freshPostgresDatabase();
    const instances = [1, 2, 3].map(() => openDatabase({ url: fresh.url, dataDir: 'memory://' }));
    try {
      await Promise.all(instances.map((d) => d.migrate()));
      const rows = await instances[0]!.db.execute(sql`select count(*)::int as n from drizzle.__drizzle_migrations`);
      assert.equal((rows as unknown as { rows: { n: number }[] }).rows[0]!.n, migrationCount);
    } finally {
      await Promise.all(instances.map((d) => d.close()));
      await fresh.drop();
    }
  });
});
