import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { extname, join, relative, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';

/** A file the console serves, read and compressed once at start. */
export interface Asset {
  body: Buffer;
  gzip: Buffer;
  etag: string;
  type: string;
}

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.json': 'application/json',
};

/**
 * The browser libraries, by the name the console imports them as (its import
 * map), from the packages' own ES module builds: no bundler, nothing built or
 * committed. Their versions are pinned in package-lock.json.
 */
const VENDOR: Record<string, string> = {
  'preact.js': 'preact/dist/preact.mjs',
  'preact-hooks.js': 'preact/hooks/dist/hooks.mjs',
  'htm.js': 'htm/dist/htm.mjs',
  'marked.js': 'marked/lib/marked.esm.js',
  'purify.js': 'dompurify/dist/purify.es.mjs',
  'uplot.js': 'uplot/dist/uPlot.esm.js',
  'uplot.css': 'uplot/dist/uPlot.min.css',
};

const WEB = fileURLToPath(new URL('./web/', import.meta.url));

/** A file to serve: compressed and tagged once. */
export function asset(path: string, body: Buffer): Asset {
  return { body, gzip: gzipSync(body, { level: 9 }), etag: `"${createHash('sha256').update(body).digest('base64url').slice(0, 27)}"`, type: TYPES[extname(path)] ?? 'application/octet-stream' };
}

function walk(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? walk(path) : [path];
  });
}

/**
 * Every file of the console by its URL path under `/console/`: the app's own
 * (`web/`) and the vendored libraries (`vendor/<name>`). Read once: the set
 * is fixed for the life of the process, so each is compressed once, not per request.
 */
export function loadAssets(): Map<string, Asset> {
  const assets = new Map<string, Asset>();
  for (const path of walk(WEB)) {
    if (!TYPES[extname(path)]) continue;
    assets.set(relative(WEB, path).split(sep).join('/'), asset(path, readFileSync(path)));
  }
  const require = createRequire(import.meta.url);
  for (const [name, spec] of Object.entries(VENDOR)) {
    // By path in the node_modules Node would search: a package's `exports` need not list its ES module build.
    const file = (require.resolve.paths(spec) ?? []).map((dir) => join(dir, spec)).find((path) => existsSync(path));
    if (!file) throw new Error(`The console needs ${spec}: run npm install`);
    assets.set(`vendor/${name}`, asset(name, readFileSync(file)));
  }
  return assets;
}
