import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { sql } from 'drizzle-orm';
import { openDatabase } from '../../src/platform/db/database.ts';
import { migratedTemplateDir, templateFile, writeTemplate } from '../../src/platform/db/pglite.ts';

const rows = (result: unknown) => (result as { rows: Array<Record<string, unknown>> }).rows;

test('a new embedded database starts from the migrated template, with the configured page cache, migrates and keeps its data', async () => {
  if (!existsSync(templateFile()) || !existsSync(migratedTemplateDir())) await writeTemplate(); // what npm install's postinstall does
  const dataDir = mkdtempSync(path.join(tmpdir(), 'parley-pglite-'));
  try {
    const first = openDatabase({ dataDir, pgliteSharedBuffersMb: 8 });
    // A copy of the migrated template, made before PGlite starts: no initdb, no tar to unpack, no migration left.
    assert.ok(existsSync(path.join(dataDir, 'pg', 'PG_VERSION')), 'copied at open');
    await first.migrate();
    const journal = JSON.parse(readFileSync(new URL('../../db/migrations/meta/_journal.json', import.meta.url), 'utf8')) as { entries: unknown[] };
    assert.equal(rows(await first.db.execute(sql`select count(*)::int as n from drizzle.__drizzle_migrations`))[0]!.n, journal.entries.length, 'every migration recorded, once');
    assert.equal(rows(await first.db.execute(sql`show shared_buffers`))[0]!.shared_buffers, '8MB');
    await first.db.execute(sql`create extension if not exists vector`);
    await first.db.execute(sql`create table kept (v vector(3))`);
    await first.db.execute(sql`insert into kept values ('[1,2,3]')`);
    await first.close();

    const second = openDatabase({ dataDir });
    assert.equal(rows(await second.db.execute(sql`show shared_buffers`))[0]!.shared_buffers, '16MB', 'the default when none is given');
    assert.deepEqual(rows(await second.db.execute(sql`select v::text from kept`)), [{ v: '[1,2,3]' }]);
    const migrations = rows(await second.db.execute(sql`select count(*)::int as n from drizzle.__drizzle_migrations`))[0]!.n;
    assert.ok((migrations as number) > 0, 'the migrations applied on the first open are recorded');
    await second.close();
  } finally {
    rmSync(dataDir, { recursive: true, force: true });
  }
});
