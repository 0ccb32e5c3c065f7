import { createHash } from 'node:crypto';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { NotFound } from '../../errors.ts';
import type { App } from '../../http/types.ts';
import { asset, type Asset } from './assets.ts';

/** The import map, inline in the page: the CSP allows it by its hash and no other inline script. */
const IMPORT_MAP = JSON.stringify({
  imports: {
    preact: '/console/vendor/preact.js',
    'preact/hooks': '/console/vendor/preact-hooks.js',
    htm: '/console/vendor/htm.js',
    marked: '/console/vendor/marked.js',
    dompurify: '/console/vendor/purify.js',
    uplot: '/console/vendor/uplot.js',
  },
});

const CSP = [
  "default-src 'self'",
  `script-src 'self' 'sha256-${createHash('sha256').update(IMPORT_MAP).digest('base64')}'`,
  // Images the user attached come back as blob: URLs. Markdown's images are narrowed to Parley's files in lib/markdown.js: a
  // source here names a path only with a host, and the page's own host is not known (a proxy may pass on another).
  "img-src 'self' blob: data:",
  "connect-src 'self'",
  "style-src 'self'",
  "object-src 'none'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join('; ');

const SECURITY = {
  'content-security-policy': CSP,
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'referrer-policy': 'same-origin',
};

/** The paths of the links in the emails the auth module sends (password reset, email verification). */
const EMAIL_LINK_PATHS = ['/reset-password', '/verify-email'];

const STATIC_IMPORT = /^\s*(?:import|export)\s+(?:[^'"`;]*?\s+from\s+)?['"]([^'"]+)['"]/gm;

/**
 * Every module main.js reaches through static imports, as URLs: preloaded
 * from the page, the browser fetches them all at once instead of discovering
 * them one level of imports at a time. Pages imported on demand stay out.
 */
export function staticImports(assets: Map<string, Asset>, entry = '/console/main.js'): string[] {
  const imports: Record<string, string> = JSON.parse(IMPORT_MAP).imports;
  const seen = new Set<string>();
  const visit = (url: string) => {
    if (seen.has(url)) return;
    seen.add(url);
    const a = assets.get(url.replace(/^\/console\//, ''));
    if (!a || !a.type.startsWith('text/javascript')) return;
    for (const [, spec] of a.body.toString('utf8').matchAll(STATIC_IMPORT)) {
      visit(imports[spec!] ?? new URL(spec!, `http://x${url}`).pathname);
    }
  };
  visit(entry);
  seen.delete(entry);
  return [...seen].filter((url) => assets.has(url.replace(/^\/console\//, '')));
}

function send(request: FastifyRequest, reply: FastifyReply, a: Asset, cache: string) {
  reply.headers({ ...SECURITY, 'content-type': a.type, etag: a.etag, 'cache-control': cache, vary: 'accept-encoding' });
  if (request.headers['if-none-match'] === a.etag) return reply.status(304).send();
  if (/\bgzip\b/.test(String(request.headers['accept-encoding'] ?? ''))) return reply.header('content-encoding', 'gzip').send(a.gzip);
  return reply.send(a.body);
}

/**
 * `GET /`: the console's page, and at the paths emailed links open; the
 * console's files under `/console/`. The page is revalidated each load (a new
 * release shows at once); the files by their ETag.
 */
export function consoleRoutes(app: App, assets: Map<string, Asset>) {
  // The import map goes in at start: one source of truth for the names the modules import.
  const preload = staticImports(assets).map((url) => `<link rel="modulepreload" href="${url}">`).join('\n');
  const page = assets.get('index.html')!.body.toString('utf8').replace('<!--IMPORT_MAP-->', `<script type="importmap">${IMPORT_MAP}</script>\n${preload}`);
  const html = asset('index.html', Buffer.from(page));
  app.get('/', { schema: { hide: true }, logLevel: 'warn', handler: (request, reply) => send(request, reply, html, 'no-cache') });
  // Where the links in Parley's emails lead (the auth module's RESET_PASSWORD_PATH and VERIFY_EMAIL_PATH): the same page, which
  // shows the route. Their token is in the query: not logged (logLevel warn), and the page moves it into the fragment.
  for (const path of EMAIL_LINK_PATHS) {
    app.get(path, { schema: { hide: true }, logLevel: 'warn', handler: (request, reply) => send(request, reply, html, 'no-store') });
  }
  app.get('/console/*', {
    schema: { hide: true },
    logLevel: 'warn',
    handler: async (request, reply) => {
      const path = (request.params as { '*': string })['*'];
      const a = path === 'index.html' ? undefined : assets.get(path);
      // A problem like every other 404 (a script tag's failed load reads no body; a client's does).
      if (!a) throw NotFound('Console file', 'console_file_not_found');
      return send(request, reply, a, 'no-cache');
    },
  });
}
