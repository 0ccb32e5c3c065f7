import { mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { build, type Plugin } from 'esbuild';

/**
 * The server as one bundle (esbuild), which `bin/parley.js` runs instead of
 * the sources while it is newer than every one of them. Node spends most of a
 * start resolving modules one by one (several hundred from node_modules;
 * drizzle-orm alone took over a second, each of its files making Node read its
 * 178 KB package.json again) and stripping TypeScript; the bundle is a few
 * files. Made by `npm install` (postinstall) and `npm run build`.
 */

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const src = path.join(root, 'src');
export const bundleDir = path.join(root, 'node_modules/.cache/parley/server');
/** What bin/parley.js reads to decide whether the bundle is current. */
export const stampFile = path.join(bundleDir, 'stamp.json');

/**
 * Left to Node at run time: native addons and packages that read files next
 * to their own code (PGlite's WebAssembly, pdf.js, BullMQ's scripts, piscina's
 * thread entry), and the
 * large ones a server loads only when it needs them (they stay out of its
 * memory until then; see the lazy imports where they are used).
 */
const EXTERNAL = [
  '@electric-sql/pglite',
  '@electric-sql/pglite-pgvector',
  '@node-rs/argon2',
  'isolated-vm',
  'sharp',
  'pg-native',
  'bullmq',
  'piscina',
  '@aws-sdk/*',
  '@scalar/fastify-api-reference',
  '@modelcontextprotocol/sdk',
  '@modelcontextprotocol/sdk/*',
  'mammoth',
  'unpdf',
];

/**
 * Parley's own modules keep the paths they have in the sources: `import.meta.url`
 * becomes the source file's URL (migrations, the console's files, the sandbox's
 * worker and lazy `require`s are found where they are), and `import.meta.main`
 * is false (only the entry point runs as a script, and it is the bundle).
 */
const keepSourcePaths: Plugin = {
  name: 'parley-source-paths',
  setup(b) {
    b.onLoad({ filter: /\.ts$/ }, (args) => {
      if (!args.path.startsWith(src + path.sep)) return undefined;
      const text = readFileSync(args.path, 'utf8').replaceAll('import.meta.url', JSON.stringify(pathToFileURL(args.path).href)).replaceAll('import.meta.main', 'false');
      return { contents: text, loader: 'ts' };
    });
  },
};

/** Builds the bundle aside and moves it into place, with the stamp of when the sources were read. */
export async function bundle(): Promise<string> {
  const builtAt = Date.now();
  const partial = `${bundleDir}.${process.pid}`;
  rmSync(partial, { recursive: true, force: true });
  await build({
    entryPoints: { main: path.join(src, 'main.ts') },
    outdir: partial,
    bundle: true,
    splitting: true,
    chunkNames: 'chunks/[name]-[hash]',
    format: 'esm',
    platform: 'node',
    target: 'node24',
    external: EXTERNAL,
    // CommonJS packages inside an ES module bundle still call require().
    banner: { js: "import { createRequire as __parleyRequire } from 'node:module'; const require = __parleyRequire(import.meta.url);" },
    plugins: [keepSourcePaths],
    logLevel: 'error',
    // Identifiers keep their names (stack traces name their functions); whitespace and comments go. V8 keeps each
    // module's source while the process runs: this halves it, and leaves it ASCII (see the bundle's test), where
    // one comment's dash made V8 hold a whole file at two bytes a character. Licences go to main.js.LEGAL.txt.
    minifyWhitespace: true,
    minifySyntax: true,
    legalComments: 'external',
  });
  // Where the sources were: the bundle points at them (see keepSourcePaths), so a moved checkout runs its sources.
  writeFileSync(path.join(partial, 'stamp.json'), JSON.stringify({ builtAt, root }));
  mkdirSync(path.dirname(bundleDir), { recursive: true });
  // Renamed, never deleted in place: a Parley starting meanwhile finds the old bundle whole, or none (and runs the sources).
  const old = `${bundleDir}.${process.pid}.old`;
  try {
    renameSync(bundleDir, old);
  } catch {
    // There was none.
  }
  renameSync(partial, bundleDir);
  rmSync(old, { recursive: true, force: true });
  return bundleDir;
}

// `npm install` (postinstall) and `npm run build` run this file; without a bundle Parley runs from the sources.
if (import.meta.main) {
  bundle().then(
    (dir) => process.stdout.write(`parley: server bundle written to ${path.relative(process.cwd(), dir)}\n`),
    (err) => {
      process.stderr.write(`parley: no server bundle (${(err as Error).message}); Parley runs from the sources\n`);
      process.exitCode = 1;
    },
  );
}
