import type { FastifyInstance } from 'fastify';
import { ValidationError } from '../errors.ts';

/**
 * PostgreSQL text and jsonb cannot hold U+0000: a NUL that reached a query would
 * fail it with a database error, a 500. It is refused at the door instead, as a
 * 400, in a JSON body (escaped as `\u0000`; a raw NUL is already malformed JSON)
 * and in the URL (`%00`, in a path or query parameter).
 *
 * A lone UTF-16 surrogate (`\ud800` escaped in a JSON body) fails a jsonb column
 * the same way, while text columns store it as U+FFFD (node-postgres writes UTF-8).
 * It is replaced by U+FFFD here, so every column sees the same well-formed text.
 *
 * The checks cost a substring search or two per request; only a body that
 * contains one of the escapes is walked for them. Every body's objects and
 * arrays (not its strings) are walked once for their depth (MAX_DEPTH).
 */
export function installNulGuard(app: FastifyInstance) {
  const parseJson = app.getDefaultJsonParser('error', 'error');
  app.removeContentTypeParser('application/json');
  // No route reads a text/plain body: without this, Fastify's own parser hands a JSON route a string (a 400
  // about types) where the documented answer for a content type a route does not take is 415.
  app.removeContentTypeParser('text/plain');
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (request, body, done) => {
    const text = body as string; // parseAs: 'string'
    // Many HTTP clients send `Content-Type: application/json` on every request, a DELETE or a POST without a body
    // included: no body is no body (a route that needs one says so, 400 validation_failed), not malformed JSON.
    if (text.length === 0) return done(null, undefined);
    parseJson(request, text, (err, value) => {
      if (err) return done(err);
      const deep = deeperThan(value, MAX_DEPTH);
      if (deep !== undefined) {
        return done(
          ValidationError(`Invalid body: ${deep} is nested more than ${MAX_DEPTH} levels deep`, 'validation_failed', { errors: [{ path: deep, message: `nested more than ${MAX_DEPTH} levels deep` }] }),
          undefined,
        );
      }
      if (text.includes('\\u0000')) {
        const at = nulAt(value, '');
        if (at !== undefined) return done(nulError('body', at || '/'), undefined);
      }
      done(null, SURROGATE_ESCAPE.test(text) ? wellFormed(value) : value);
    });
  });
  // After the route's own onRequest hooks (authentication): a stranger gets a 401 whatever the URL holds.
  app.addHook('preValidation', (request, _reply, done) => {
    done(request.url.includes('%00') ? nulError('URL', request.url.split('?')[0]!) : undefined);
  });
}

/**
 * How deep a JSON body may nest. Deeper values are refused at the door: code that walks or
 * serializes them (a tool's schema sent upstream) would run out of stack (a 500), and no API
 * here takes anything near this deep.
 */
export const MAX_DEPTH = 128;

/** The JSON pointer of the first array or object nested deeper than `max` levels, if any (the walk goes no deeper than `max`). */
export function deeperThan(value: unknown, max: number): string | undefined {
  const at = deepPath(value, max);
  return at && (at.length ? at.reverse().map((k) => `/${String(k).replaceAll('~', '~0').replaceAll('/', '~1')}`).join('') : '/');
}

/** The keys down to it, innermost first (built only on the way back from a find). */
function deepPath(value: unknown, max: number): Array<string | number> | undefined {
  if (!value || typeof value !== 'object') return undefined;
  if (max === 0) return [];
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      const v = value[i];
      const at = v && typeof v === 'object' ? deepPath(v, max - 1) : undefined;
      if (at) return (at.push(i), at);
    }
    return undefined;
  }
  for (const key in value) {
    const v = (value as Record<string, unknown>)[key];
    const at = v && typeof v === 'object' ? deepPath(v, max - 1) : undefined;
    if (at) return (at.push(key), at);
  }
  return undefined;
}

/** `\ud800`–`\udfff`: a surrogate, perhaps one of a pair (JSON allows `\uD83D` as well). */
const SURROGATE_ESCAPE = /\\ud[89a-f]/i;

const nulError = (where: string, path: string) =>
  ValidationError(`Invalid ${where}: ${path} contains a NUL character (U+0000), which cannot be stored`, 'validation_failed', {
    errors: [{ path, message: 'contains a NUL character (U+0000)' }],
  });

/** The JSON pointer of the first string (value or key) holding a NUL, if any. */
function nulAt(value: unknown, path: string): string | undefined {
  if (typeof value === 'string') return value.includes('\0') ? path : undefined;
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      const at = nulAt(value[i], `${path}/${i}`);
      if (at !== undefined) return at;
    }
    return undefined;
  }
  if (value && typeof value === 'object') {
    for (const [key, v] of Object.entries(value)) {
      const keyPath = `${path}/${key.replaceAll('~', '~0').replaceAll('/', '~1')}`;
      if (key.includes('\0')) return keyPath;
      const at = nulAt(v, keyPath);
      if (at !== undefined) return at;
    }
  }
  return undefined;
}

/** The value with every string in it, keys included, well-formed: a lone surrogate becomes U+FFFD. */
function wellFormed(value: unknown): unknown {
  if (typeof value === 'string') return value.toWellFormed();
  if (Array.isArray(value)) return value.map(wellFormed);
  // fromEntries defines own properties: a key can never reach a prototype setter.
  if (value && typeof value === 'object') return Object.fromEntries(Object.entries(value).map(([key, v]) => [key.toWellFormed(), wellFormed(v)]));
  return value;
}
