import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { PGlite } from '@electric-sql/pglite';
import { sql } from 'drizzle-orm';
import { openDatabase, type Database } from '../../src/platform/db/database.ts';
import { TemplateBlob } from '../../src/platform/db/pglite.ts';

const migrations = fileURLToPath(new URL('../../db/migrations', import.meta.url));

/** Changes whenever a migration does (or the PGlite version): a stale snapshot is never loaded. */
function snapshotFile(): string {
  const hash = createHash('sha256');
  const pkg = JSON.parse(readFileSync(fileURLToPath(new URL('../../node_modules/@electric-sql/pglite/package.json', import.meta.url)), 'utf8'));
  // The recipe's version: 2 dropped the template databases.
  hash.update(pkg.version).update('2');
  for (const name of readdirSync(migrations).filter((n) => n.endsWith('.sql')).sort()) hash.update(name).update(readFileSync(path.join(migrations, name)));
  return path.join(tmpdir(), `parley-test-pglite-${hash.digest('hex').slice(0, 16)}.tar`);
}

let snapshot: Promise<Blob> | undefined;

/**
 * A PGlite data directory with every migration applied, made once and kept in
 * the temp dir, so each embedded test app loads it (about a second) instead of
 * migrating a fresh database (several). Apps still run `migrate()`, which finds
 * nothing left to do.
 */
export function migratedPgliteSnapshot(): Promise<Blob> {
  snapshot ??= (async () => {
    const file = snapshotFile();
    if (existsSync(file)) return new TemplateBlob(file);
    const database = openDatabase({ dataDir: 'memory://' });
    await database.migrate();
    // Tests use the database 'postgres' alone: the two templates are a third of the dump, unpacked by every app.
    for (const template of ['template0', 'template1']) {
      await database.db.execute(sql.raw(`alter database ${template} is_template false`));
      await database.db.execute(sql.raw(`drop database ${template}`));
    }
    const dump = await ((database.db as unknown as { $client: PGlite }).$client).dumpDataDir('none');
    await database.close();
    // Written aside and renamed: a concurrent test process never reads half a file.
    const partial = `${file}.${process.pid}`;
    writeFileSync(partial, Buffer.from(await dump.arrayBuffer()));
    renameSync(partial, file);
    return dump;
  })();
  return snapshot;
}

let shared: Promise<Database> | undefined;

/** One migrated in-memory database for a whole test file, for suites that empty what they use after each test. */
export function sharedPglite(): Promise<Database> {
  shared ??= (async () => {
    const database = openDatabase({ dataDir: 'memory://', pgliteSnapshot: await migratedPgliteSnapshot() });
    await database.migrate();
    return database;
  })();
  return shared;
}

export async function closeSharedPglite(): Promise<void> {
  const database = await shared;
  shared = undefined;
  await database?.close();
}
