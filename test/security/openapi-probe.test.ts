import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { backends, startApp, type ApiResponse, type TestApp } from '../support/app.ts';
import { createUser, type TestUser } from '../support/factories.ts';
import { startFakeOpenAI, type FakeOpenAI } from '../support/fake-openai.ts';

/**
 * A stranger's probe of the whole API, as /openapi.json lists it: every operation, with each path parameter,
 * query parameter and body field (and the fields one level inside) given what a careless or hostile client
 * sends: wrong types, numbers past PostgreSQL's integers or JavaScript's, huge, empty or odd strings (a lone
 * surrogate, a direction override, dates outside any calendar). Nothing may be a 5xx, and every refusal is in
 * its route's documented format: a problem, or OpenAI's or Anthropic's error body on their routes. A route
 * added later is probed without anyone listing it here.
 */

type Json = any;

const WRONG: Record<string, unknown[]> = {
  string: ['', 'x'.repeat(200_000), '\ud800', '💥'.repeat(3000), 123, null, '0000-01-01T00:00:00Z', '+275760-09-13T00:00:00Z', '9'.repeat(40), '-1', '1e400', '../..', ' ', '\u202e', { a: 1 }, ['x']],
  integer: [2147483648, -2147483649, 9007199254740993, 1e308, -1e308, -1, 0, 1.5, '5', null, true, 1e21],
  number: [2147483648, 1e308, -1e308, -1, 0, 1e-320, '5', null],
  boolean: ['true', 1, null],
  array: ['a', [null], Array(5000).fill('x'), [[[[[]]]]], {}],
  object: ['x', [], null, { '': 1, ['x'.repeat(10_000)]: 1 }],
};
const WRONG_PATH = ['x', '00000000-0000-0000-0000-000000000000', '-1', '9'.repeat(30), '%E0%A4%A', '..%2F..', '0', '1e10', '%F0%9F%92%A5', 'a'.repeat(3000), '00000000-0000-0000-0000-0000000000001', '2147483648'];
const WRONG_QUERY = ['', 'x'.repeat(5000), '-1', '0', '2147483648', '1e308', '9'.repeat(40), '0000-01-01', '+275760-09-13', '2026-02-30', 'true', '%00', '%ED%A0%80', 'a,b,c,d,e,f,g', '[]', 'null', 'NaN', 'Infinity', '-0'];

/** What would end the probe's own session or account, and the OAuth dance, which has its own tests. */
const skipped = (method: string, path: string) =>
  (method === 'delete' && (path === '/v1/users/me' || path.startsWith('/v1/api-keys/'))) ||
  /\/auth\/(logout|password\/change|mfa\/totp\/(activate|disable)|sessions\/\{id\}|oauth)|\/ws$|unsubscribe/.test(path) ||
  (path.startsWith('/v1/admin/users/{id}') && method !== 'get');

/** A 4xx in the format its route documents. */
function wellFormed(r: ApiResponse): boolean {
  const type = r.headers.get('content-type') ?? '';
  const b = r.body;
  if (type.startsWith('application/problem+json')) return typeof b?.type === 'string' && typeof b.title === 'string' && b.status === r.status && typeof b.code === 'string';
  if (!type.startsWith('application/json')) return false;
  return (typeof b?.error?.message === 'string' && typeof b.error.type === 'string') || (b?.type === 'error' && typeof b.error?.type === 'string');
}

for (const backend of backends()) {
  describe(`the API probed by a stranger, operation by operation [${backend}]`, () => {
    let t: TestApp;
    let openai: FakeOpenAI;
    let admin: TestUser;
    let other: TestUser;
    let spec: Json;
    const ids: Record<string, string> = {};

    before(async () => {
      openai = await startFakeOpenAI();
      t = await startApp({ backend, env: { ...openai.env, RATE_LIMIT_ENABLED: 'false', AUTH_RATE_LIMIT_PER_IP: '1000000000', DEFAULT_MODEL: 'openai:gpt-4o-mini', WEBHOOKS_ALLOW_PRIVATE: 'true' } });
      spec = (await t.api('GET', '/openapi.json')).body;
      // An admin reaches every route; what it acts on is its own, or `other`'s where a route names a user.
      admin = await createUser(t, { admin: true });
      other = await createUser(t);
      const made = async (path: string, body: unknown) => {
        const r = await t.api('POST', path, { token: admin.accessToken, body });
        assert.ok(r.status < 300, `${path}: ${r.status} ${r.text}`);
        return r.body.id as string;
      };
      ids.projects = await made('/v1/projects', { name: 'probed' });
      ids.prompts = await made(`/v1/projects/${ids.projects}/prompts`, { name: 'probed', content: 'Be brief.' });
      ids.conversations = await made('/v1/conversations', { title: 'probed' });
      ids.documents = await made('/v1/documents', { title: 'probed', body: 'hello world' });
      ids.comments = await made(`/v1/documents/${ids.documents}/comments`, { body: 'a comment', quote: 'hello' });
      ids.links = await made(`/v1/documents/${ids.documents}/links`, {});
      ids.collections = await made('/v1/knowledge/collections', { name: 'probed' });
      ids.endpoints = await made('/v1/webhooks/endpoints', { url: `${openai.url}/hook`, events: ['message.completed'] });
      ids['api-keys'] = await made('/v1/api-keys', { name: 'probed' });
    });
    after(async () => {
      await t?.close();
      await openai?.close();
    });

    test('no operation answers a 5xx, and every refusal is in its documented format', async () => {
      const resolve = (s: Json, depth = 0): Json => {
        if (!s || depth > 20) return s;
        if (s.$ref) return resolve(s.$ref.split('/').slice(1).reduce((o: Json, k: string) => o[k], spec), depth + 1);
        if (s.allOf) return resolve(Object.assign({}, ...s.allOf.map((x: Json) => resolve(x, depth + 1))), depth + 1);
        return s;
      };
      const variants = (s: Json): Json[] => {
        const r = resolve(s);
        return r?.anyOf || r?.oneOf ? (r.anyOf ?? r.oneOf).map((x: Json) => resolve(x)) : [r];
      };
      const typeOf = (s: Json): string | undefined => {
        const r = resolve(s);
        return Array.isArray(r?.type) ? r.type.find((x: string) => x !== 'null') : (r?.type ?? (r?.properties ? 'object' : undefined));
      };
      const objectOf = (s: Json): Json => variants(s).find((v) => v?.properties);
      /** The smallest body the schema takes, by its required fields. */
      const sample = (s: Json, depth = 0): Json => {
        const r = variants(s).find((v) => typeOf(v) !== 'null') ?? resolve(s);
        if (!r || depth > 6) return null;
        if (r.const !== undefined) return r.const;
        if (r.enum) return r.enum[0];
        if (r.default !== undefined) return r.default;
        switch (typeOf(r)) {
          case 'string':
            return r.format === 'email' ? 'someone@example.com' : r.format === 'uuid' ? ids.projects : 'x'.repeat(Math.max(1, r.minLength ?? 1));
          case 'integer':
          case 'number':
            return r.minimum ?? 1;
          case 'boolean':
            return true;
          case 'array':
            return Array.from({ length: r.minItems ?? 0 }, () => sample(r.items, depth + 1));
          case 'object':
            return Object.fromEntries((r.required ?? []).map((k: string) => [k, sample(r.properties?.[k], depth + 1)]));
        }
        return null;
      };
      // A path parameter names the collection before it; the rest by name.
      const named: Record<string, () => string> = { userId: () => other.id, promptId: () => ids.prompts!, commentId: () => ids.comments!, linkId: () => ids.links!, number: () => '1' };
      const filled = (path: string, override?: [string, string]) =>
        path.replace(/\{([^}]+)\}/g, (_, name: string) => {
          if (override?.[0] === name) return override[1];
          const segments = path.split('/');
          return named[name]?.() ?? ids[segments[segments.indexOf(`{${name}}`) - 1]!] ?? '00000000-0000-4000-8000-000000000000';
        });

      const failures: string[] = [];
      const seen = new Set<string>();
      let sent = 0;
      const send = async (method: string, route: string, url: string, body: unknown, what: string) => {
        sent++;
        const r = await t.api(method.toUpperCase(), url, { token: admin.accessToken, ...(body === undefined ? {} : { body }) });
        const wrong = r.status >= 500 ? 'a 5xx' : r.status >= 400 && !wellFormed(r) ? 'a refusal in no documented format' : undefined;
        const key = `${method} ${route} ${r.status} ${wrong}`;
        if (wrong && !seen.has(key)) {
          seen.add(key);
          failures.push(`${method.toUpperCase()} ${route} with ${what}: ${wrong}, ${r.status} ${r.text.slice(0, 300)}`);
        }
      };

      // Budgets last: a probe's zero budget would refuse the model calls after it before they got far.
      const operations = Object.entries<Json>(spec.paths)
        .flatMap(([path, ops]) => Object.entries<Json>(ops).map(([method, op]) => ({ path, method, op })))
        .filter(({ path, method }) => ['get', 'post', 'put', 'patch', 'delete'].includes(method) && !skipped(method, path))
        .sort((a, b) => Number(a.path.includes('budgets')) - Number(b.path.includes('budgets')));
      assert.ok(operations.length > 150, `${operations.length} operations`);
      for (const { path, method, op } of operations) {
        const parameters: Json[] = op.parameters ?? [];
        const schema = op.requestBody?.content?.['application/json']?.schema;
        const base = schema ? sample(schema) : undefined;
        for (const p of parameters.filter((x) => x.in === 'path')) {
          for (const v of WRONG_PATH) await send(method, path, filled(path, [p.name, v]), base, `${p.name} = ${v.slice(0, 40)}`);
        }
        for (const q of parameters.filter((x) => x.in === 'query')) {
          for (const v of WRONG_QUERY) await send(method, path, `${filled(path)}?${q.name}=${v.startsWith('%') ? v : encodeURIComponent(v)}`, base, `?${q.name}=${v.slice(0, 40)}`);
        }
        if (!schema) continue;
        await send(method, path, filled(path), base, 'the smallest body');
        for (const [field, fieldSchema] of Object.entries<Json>(objectOf(schema)?.properties ?? {})) {
          const wrongs = (s: Json) => WRONG[typeOf(s) ?? 'string'] ?? WRONG.string!;
          for (const v of wrongs(fieldSchema)) await send(method, path, filled(path), { ...base, [field]: v }, `${field} = ${JSON.stringify(v)?.slice(0, 40)}`);
          const inner = objectOf(fieldSchema);
          for (const [k, s] of Object.entries<Json>(inner?.properties ?? {})) {
            for (const v of wrongs(s)) await send(method, path, filled(path), { ...base, [field]: { ...sample(inner), [k]: v } }, `${field}.${k} = ${JSON.stringify(v)?.slice(0, 40)}`);
          }
          const item = objectOf(resolve(fieldSchema)?.items);
          for (const [k, s] of Object.entries<Json>(item?.properties ?? {})) {
            for (const v of wrongs(s)) await send(method, path, filled(path), { ...base, [field]: [{ ...sample(item), [k]: v }] }, `${field}[0].${k} = ${JSON.stringify(v)?.slice(0, 40)}`);
          }
        }
      }
      assert.ok(sent > 5000, `${sent} requests`);
      assert.deepEqual(failures, []);

      // The probe's own things are where they were.
      for (const path of [`/v1/projects/${ids.projects}`, `/v1/documents/${ids.documents}`, `/v1/knowledge/collections/${ids.collections}`, `/v1/webhooks/endpoints/${ids.endpoints}`]) {
        assert.equal((await t.api('GET', path, { token: admin.accessToken })).status, 200, path);
      }
    });
  });
}
