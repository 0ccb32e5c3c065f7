import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { sql } from 'drizzle-orm';
import { OperatorError } from '../../src/errors.ts';
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

test('a data directory serves one process at a time: a second opening is refused while the first holds it; a dead holder is taken over', async () => {
  const dataDir = mkdtempSync(path.join(tmpdir(), 'parley-pglite-'));
  const lock = path.join(dataDir, 'pg.lock');
  try {
    const first = openDatabase({ dataDir });
    await first.db.execute(sql`select 1`);
    assert.equal(statSync(path.join(dataDir, 'pg')).mode & 0o777, 0o700, "the database's files are its owner's alone");
    assert.throws(() => openDatabase({ dataDir }), (err: Error) => err instanceof OperatorError && err.message.includes(`in use by process ${process.pid}`));
    // Another process holds it.
    await first.close();
    assert.equal(existsSync(lock), false, 'closing lets go');
    const other = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60_000)']);
    try {
      writeFileSync(lock, `${other.pid}\n`);
      assert.throws(() => openDatabase({ dataDir }), (err: Error) => err instanceof OperatorError && err.message.includes(`in use by process ${other.pid}`));
    } finally {
      other.kill('SIGKILL');
      await once(other, 'exit');
    }
    // Its holder is gone (a crash): taken over.
    const again = openDatabase({ dataDir });
    await again.db.execute(sql`select 1`);
    assert.equal(readFileSync(lock, 'utf8').trim(), String(process.pid));
    await again.close();
  } finally {
    rmSync(dataDir, { recursive: true, force: true });
  }
});
