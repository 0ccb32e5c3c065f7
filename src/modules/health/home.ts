import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { App } from '../../http/types.ts';
import { escapeHtml } from '../../platform/text.ts';

/** Parley's version, from its package.json, read once when the server starts. */
export const VERSION: string = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')).version;

/** Where the page points: each answers GET with 200 (`/docs` itself redirects to `/docs/`). */
export const HOME_LINKS = [
  { href: '/docs/', label: 'API reference' },
  { href: '/openapi.json', label: 'OpenAPI document' },
  { href: '/health', label: 'Health check' },
] as const;

const STYLE = 'body{font:16px/1.5 system-ui,sans-serif;max-width:38rem;margin:4rem auto;padding:0 1rem;color:#1f2328}code{font-size:.9em}';

function page(version: string): string {
  const v = escapeHtml(version);
  const links = HOME_LINKS.map((l) => `<li><a href="${l.href}">${l.label}</a> <code>${l.href}</code></li>`).join('');
  return (
    '<!doctype html>\n' +
    `<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">` +
    `<title>Parley ${v}</title><style>${STYLE}</style></head>` +
    `<body><h1>Parley</h1><p>Version ${v}. This server runs the Parley API, a backend for AI assistant products; ` +
    `its web console is turned off (CONSOLE_ENABLED=false).</p><ul>${links}</ul></body></html>\n`
  );
}

// The page has no scripts and one inline style: the policy allows that style, by its hash, and nothing else.
const HEADERS = {
  'content-type': 'text/html; charset=utf-8',
  'content-security-policy': `default-src 'none'; style-src 'sha256-${createHash('sha256').update(STYLE).digest('base64')}'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'`,
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
  'cache-control': 'no-cache',
};

/** `GET /` (and HEAD) when the console is off: a small page naming Parley and its version. */
export function homeRoute(app: App) {
  const html = page(VERSION);
  app.get('/', {
    schema: { hide: true },
    logLevel: 'warn',
    handler: async (_request, reply) => reply.headers(HEADERS).send(html),
  });
}
