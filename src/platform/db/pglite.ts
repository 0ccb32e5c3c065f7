import { chmodSync, cpSync, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { PGlite } from '@electric-sql/pglite';
import { btree_gin } from '@electric-sql/pglite/contrib/btree_gin';
import { vector } from '@electric-sql/pglite-pgvector';
import { OperatorError } from '../../errors.ts';

/**
 * Postgres' own shared buffer cache inside PGlite's WebAssembly memory. PGlite
 * starts with Postgres' 128 MB default, every page of which ends up resident;
 * the embedded database's working set is far smaller, and its pages stay in
 * the OS page cache when they leave this one.
 */
export const DEFAULT_PGLITE_SHARED_BUFFERS_MB = 16;

/**
 * The extensions PGlite loads (it has none it is not given): pgvector for knowledge search, btree_gin for the
 * full-text indexes that lead with the user (db/migrations/0030_search_per_user.sql).
 */
const extensions = { vector, btree_gin };

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const pgliteVersion = (): string =>
  JSON.parse(readFileSync(path.join(root, 'node_modules/@electric-sql/pglite/package.json'), 'utf8')).version;
const templateDir = path.join(root, 'node_modules/.cache/parley');
/** A fresh cluster as PGlite's initdb leaves it; it depends only on the PGlite version. */
export const templateFile = (): string => path.join(templateDir, `pglite-${pgliteVersion()}-initdb.tar`);
/**
 * The same cluster with Parley's migrations applied, as a data directory: a
 * new one is a copy of it (tens of ms, where PGlite unpacks the tar into its
 * file system in half a second, then the migrations take another half). A
 * migration added after it was made is applied at start, as on any database.
 */
export const migratedTemplateDir = (): string => path.join(templateDir, `pglite-${pgliteVersion()}-migrated`);
const migrationsFolder = path.join(root, 'db/migrations');

function startParams(sharedBuffersMb: number): string[] {
  const defaults = (PGlite as unknown as { defaultStartParams: string[] }).defaultStartParams;
  return [...defaults, '-c', `shared_buffers=${sharedBuffersMb}MB`];
}

/**
 * Opens PGlite in `dir` (undefined: in memory). A new cluster starts from the
 * templates `npm install` makes (see `writeTemplate`), when they are there: a
 * directory is a copy of the migrated one; in memory, the initdb dump is
 * unpacked. Running initdb was most of a first start (about four fifths of
 * its CPU), unpacking and migrating most of the rest.
 */
export function openPglite(opts: { dir?: string; snapshot?: Blob; sharedBuffersMb?: number }): PGlite {
  const params = startParams(opts.sharedBuffersMb ?? DEFAULT_PGLITE_SHARED_BUFFERS_MB);
  if (opts.dir) {
    copyTemplate(opts.dir);
    // Its owner's alone, as PostgreSQL requires of a data directory: PGlite writes its files world-readable and writable.
    chmodSync(opts.dir, 0o700);
  }
  const fresh = !opts.dir || !existsSync(path.join(opts.dir, 'PG_VERSION'));
  const template = opts.snapshot ?? (fresh ? readTemplate() : undefined);
  const options = { extensions, startParams: params, ...(template ? { loadDataDir: template } : {}) };
  // In memory: the options alone. PGlite(undefined, options) drops them all (no pgvector, no template, no page cache size).
  return opts.dir ? new PGlite(opts.dir, options) : new PGlite(options);
}

/**
 * A new (missing or empty) data directory becomes a copy of the migrated
 * template, when there is one: copied aside and renamed, so a start killed
 * midway leaves no half cluster behind. Anything else is PGlite's to open.
 */
function copyTemplate(dir: string): void {
  const empty = !existsSync(dir) || readdirSync(dir).length === 0;
  if (empty && existsSync(path.join(migratedTemplateDir(), 'PG_VERSION'))) {
    const partial = `${dir}.${process.pid}.partial`;
    rmSync(partial, { recursive: true, force: true });
    cpSync(migratedTemplateDir(), partial, { recursive: true });
    rmSync(dir, { recursive: true, force: true });
    renameSync(partial, dir);
  }
  mkdirSync(dir, { recursive: true, mode: 0o700 });
}

/**
 * Holds a data directory for this process until the returned function is called. PGlite is one process's
 * database: a second process opening the same files (another `parley start`, an `admin` command beside a
 * running server) would write over the first one's pages, and whichever closed last would silently undo
 * the other's writes. A lock file beside the directory names its holder's pid, as PostgreSQL's
 * postmaster.pid does; one whose process is gone (a crash, kill -9) is taken over.
 */
export function lockDataDir(dir: string): () => void {
  const file = `${dir}.lock`;
  mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
  for (;;) {
    try {
      writeFileSync(file, `${process.pid}\n`, { flag: 'wx', mode: 0o600 });
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    const holder = Number.parseInt(readFileSync(file, 'utf8'), 10);
    if (holder > 0 && isRunning(holder)) {
      throw new OperatorError(
        `The data directory ${path.dirname(dir)} is in use by process ${holder}${holder === process.pid ? ' (this one)' : ''}: ` +
          `the embedded database serves one process at a time. Stop it first (or, if no Parley runs there, delete ${file}).`,
      );
    }
    rmSync(file, { force: true }); // its holder is gone
  }
  return () => {
    if (readFileSync(file, 'utf8').trim() === String(process.pid)) rmSync(file, { force: true });
  };
}

/** Whether a process with this pid runs (one of another user's included). */
function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * A tar file as a Blob whose bytes are read from disk when PGlite asks for
 * them: PGlite keeps the Blob it was given as long as it runs, and a Blob
 * made from the bytes would keep all 40 MB of them (and hand them over in
 * 64 KB pieces, joined again: a third of a second for 40 MB).
 */
export class TemplateBlob extends Blob {
  readonly #file: string;
  constructor(file: string) {
    super([]);
    this.#file = file;
  }
  override async arrayBuffer(): Promise<ArrayBuffer> {
    const bytes = await readFile(this.#file);
    // A file this size is read into an ArrayBuffer of its own: handed over as it is, not copied (a quarter of a second for 40 MB on a VM slow to fault pages in).
    if (bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength) return bytes.buffer as ArrayBuffer;
    return bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer;
  }
}

function readTemplate(): Blob | undefined {
  // Not made (installed with --ignore-scripts): PGlite runs initdb itself.
  return existsSync(templateFile()) ? new TemplateBlob(templateFile()) : undefined;
}

/** Runs initdb once, in memory, and keeps the cluster as the templates (the dump, and a migrated directory); older versions' are removed. */
export async function writeTemplate(): Promise<string> {
  const file = templateFile();
  // With the extensions it will be opened with: a dump holds the installed extension files too, and without
  // them a cluster unpacked from it could not create pgvector. (PGlite installs the files of the extensions it
  // is given at each start as well: a template made before btree_gin was added still creates it.)
  const pg = new PGlite({ extensions, startParams: startParams(DEFAULT_PGLITE_SHARED_BUFFERS_MB) });
  await pg.waitReady;
  const dump = await pg.dumpDataDir('none');
  await pg.close();
  mkdirSync(templateDir, { recursive: true });
  // Written aside and renamed: a Parley starting meanwhile never reads half a file.
  const partial = `${file}.${process.pid}`;
  writeFileSync(partial, Buffer.from(await dump.arrayBuffer()));
  renameSync(partial, file);
  await writeMigratedTemplate(dump);
  for (const name of readdirSync(templateDir)) {
    const other = path.join(templateDir, name);
    if (/^pglite-.*-(initdb\.tar|migrated)$/.test(name) && other !== file && other !== migratedTemplateDir()) rmSync(other, { recursive: true, force: true });
  }
  return file;
}

/** Unpacks the initdb dump into a directory, applies the migrations, shuts down cleanly, and moves it into place. */
async function writeMigratedTemplate(dump: Blob): Promise<void> {
  const target = migratedTemplateDir();
  const partial = `${target}.${process.pid}`;
  rmSync(partial, { recursive: true, force: true });
  const pg = new PGlite(partial, { extensions, startParams: startParams(DEFAULT_PGLITE_SHARED_BUFFERS_MB), loadDataDir: dump });
  try {
    const [{ drizzle }, { migrate }] = await Promise.all([import('drizzle-orm/pglite'), import('drizzle-orm/pglite/migrator')]);
    await migrate(drizzle(pg), { migrationsFolder });
  } finally {
    await pg.close();
  }
  rmSync(target, { recursive: true, force: true });
  renameSync(partial, target);
}

// `npm install` runs this file (package.json's postinstall); a failure there only means a slower first start.
if (import.meta.main) {
  writeTemplate().then(
    (file) => process.stdout.write(`parley: PGlite template written to ${path.relative(process.cwd(), file)}\n`),
    (err) => process.stderr.write(`parley: no PGlite template (${(err as Error).message}); the first start will run initdb\n`),
  );
}
