import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { PGlite } from '@electric-sql/pglite';
import { vector } from '@electric-sql/pglite-pgvector';

/**
 * Postgres' own shared buffer cache inside PGlite's WebAssembly memory. PGlite
 * starts with Postgres' 128 MB default, every page of which ends up resident;
 * the embedded database's working set is far smaller, and its pages stay in
 * the OS page cache when they leave this one.
 */
export const DEFAULT_PGLITE_SHARED_BUFFERS_MB = 16;

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const pgliteVersion = (): string =>
  JSON.parse(readFileSync(path.join(root, 'node_modules/@electric-sql/pglite/package.json'), 'utf8')).version;
const templateDir = path.join(root, 'node_modules/.cache/parley');
/** A fresh cluster as PGlite's initdb leaves it; it depends only on the PGlite version. */
export const templateFile = (): string => path.join(templateDir, `pglite-${pgliteVersion()}-initdb.tar`);

function startParams(sharedBuffersMb: number): string[] {
  const defaults = (PGlite as unknown as { defaultStartParams: string[] }).defaultStartParams;
  return [...defaults, '-c', `shared_buffers=${sharedBuffersMb}MB`];
}

/**
 * Opens PGlite in `dir` (undefined: in memory). A new cluster starts from the
 * initdb template `npm install` makes (see `writeTemplate`), when it is there:
 * running initdb is most of a first start (about four fifths of its CPU).
 */
export function openPglite(opts: { dir?: string; snapshot?: Blob; sharedBuffersMb?: number }): PGlite {
  const extensions = { vector };
  const params = startParams(opts.sharedBuffersMb ?? DEFAULT_PGLITE_SHARED_BUFFERS_MB);
  if (opts.dir) mkdirSync(opts.dir, { recursive: true });
  const fresh = !opts.dir || !existsSync(path.join(opts.dir, 'PG_VERSION'));
  const template = opts.snapshot ?? (fresh ? readTemplate() : undefined);
  const options = { extensions, startParams: params, ...(template ? { loadDataDir: template } : {}) };
  // In memory: the options alone. PGlite(undefined, options) drops them all (no pgvector, no template, no page cache size).
  return opts.dir ? new PGlite(opts.dir, options) : new PGlite(options);
}

/**
 * The template as a Blob whose bytes are read from disk when PGlite asks for
 * them: PGlite keeps the Blob it was given as long as it runs, and a Blob
 * made from the bytes would keep all 40 MB of them.
 */
class TemplateBlob extends Blob {
  readonly #file: string;
  constructor(file: string) {
    super([]);
    this.#file = file;
  }
  override async arrayBuffer(): Promise<ArrayBuffer> {
    const bytes = await readFile(this.#file);
    return bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer;
  }
}

function readTemplate(): Blob | undefined {
  // Not made (installed with --ignore-scripts): PGlite runs initdb itself.
  return existsSync(templateFile()) ? new TemplateBlob(templateFile()) : undefined;
}

/** Runs initdb once, in memory, and keeps the cluster as the template; older versions' templates are removed. */
export async function writeTemplate(): Promise<string> {
  const file = templateFile();
  // With the extensions it will be opened with: a dump holds the installed extension files too, and without
  // them a cluster unpacked from it could not create pgvector.
  const pg = new PGlite({ extensions: { vector }, startParams: startParams(DEFAULT_PGLITE_SHARED_BUFFERS_MB) });
  await pg.waitReady;
  const dump = await pg.dumpDataDir('none');
  await pg.close();
  mkdirSync(templateDir, { recursive: true });
  // Written aside and renamed: a Parley starting meanwhile never reads half a file.
  const partial = `${file}.${process.pid}`;
  writeFileSync(partial, Buffer.from(await dump.arrayBuffer()));
  renameSync(partial, file);
  for (const name of readdirSync(templateDir)) {
    if (/^pglite-.*-initdb\.tar$/.test(name) && path.join(templateDir, name) !== file) rmSync(path.join(templateDir, name), { force: true });
  }
  return file;
}

// `npm install` runs this file (package.json's postinstall); a failure there only means a slower first start.
if (import.meta.main) {
  writeTemplate().then(
    (file) => process.stdout.write(`parley: PGlite template written to ${path.relative(process.cwd(), file)}\n`),
    (err) => process.stderr.write(`parley: no PGlite template (${(err as Error).message}); the first start will run initdb\n`),
  );
}
