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
 * contains one of the escapes is walked.
 */
export function installNulGuard(app: FastifyInstance) {
  const parseJson = app.getDefaultJsonParser('error', 'error');
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (request, body, done) => {
    const text = body as string; // parseAs: 'string'
    parseJson(request, text, (err, value) => {
      if (err) return done(err);
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
