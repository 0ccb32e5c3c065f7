import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { Writable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { createLogger } from '../../src/platform/observability/logger.ts';
import { buildApp } from '../../src/app.ts';
import { loadConfig } from '../../src/config.ts';
import { createDeps } from '../../src/deps.ts';
import type { App } from '../../src/http/types.ts';
import { backends, freshPostgresDatabase, startApp, type Backend, type TestApp } from '../support/app.ts';

/** Every method + path the app routes, read from Fastify's own route tree. */
function registeredRoutes(app: App): Array<{ method: string; path: string }> {
  const routes: Array<{ method: string; path: string }> = [];
  const prefixes: string[] = [];
  for (const line of app.printRoutes({ commonPrefix: false }).split('\n')) {
    const m = /^([│ ]*)[├└]── (\S+) \(([^)]*)\)$/.exec(line);
    if (!m) continue;
    const depth = m[1]!.length / 4;
    const path = (prefixes[depth - 1] ?? '') + m[2];
    prefixes.length = depth;
    prefixes[depth] = path;
    for (const method of m[3]!.split(', ')) if (method !== 'HEAD' && method !== '-') routes.push({ method, path });
  }
  return routes;
}

for (const backend of backends()) {
  describe(`HTTP platform [${backend}]`, () => {
    let t: TestApp;
    before(async () => {
      t = await startApp({ backend });
    });
    after(() => t.close());

    test('/health and /ready', async () => {
      assert.deepEqual((await t.api('GET', '/health')).body, { status: 'ok' });
      const ready = await t.api('GET', '/ready');
      assert.equal(ready.status, 200);
      const checks = backend === 'postgres' && process.env.REDIS_URL ? { database: 'ok', redis: 'ok', storage: 'ok' } : { database: 'ok', storage: 'ok' };
      assert.deepEqual(ready.body, { status: 'ready', checks });
    });

    test('/metrics: request durations by route template and status, and process metrics', async () => {
      await t.api('GET', '/health');
      await t.api('DELETE', '/v1/auth/sessions/0190a3f2-0000-7000-8000-000000000000');
      await t.api('GET', '/no/such/route/12345');
      const res = await t.api('GET', '/metrics');
      assert.equal(res.status, 200);
      assert.match(res.headers.get('content-type')!, /^text\/plain; version=0\.0\.4/);
      const lines = res.text.split('\n');
      const count = (labels: string) => lines.find((l) => l.startsWith(`parley_http_request_duration_seconds_count{${labels}}`));
      assert.ok(count('method="GET",route="/health",status="200"'), 'a matched route is labelled by its path');
      assert.ok(count('method="DELETE",route="/v1/auth/sessions/:id",status="401"'), 'parameters are not labels: the template is');
      assert.ok(count('method="GET",route="unmatched",status="404"'), 'unknown paths share one label');
      assert.ok(!res.text.includes('12345'));
      for (const name of ['process_cpu_seconds_total', 'process_resident_memory_bytes', 'nodejs_eventloop_lag_seconds', 'nodejs_heap_size_used_bytes']) {
        assert.ok(lines.some((l) => l.startsWith(`${name} `)), name);
      }
    });

    test('/openapi.json is OpenAPI 3.1 and documents every route', async () => {
      const res = await t.api('GET', '/openapi.json');
      assert.equal(res.status, 200);
      assert.equal(res.body.openapi, '3.1.0');
      const routes = registeredRoutes(t.app);
      assert.ok(routes.filter((r) => r.path.startsWith('/v1/')).length >= 10, 'the route tree was read');
      const undocumented = routes
        .filter((r) => r.path.startsWith('/v1/') || ['/health', '/ready', '/metrics', '/.well-known/jwks.json'].includes(r.path))
        // A wildcard (a model id with slashes) is the path parameter `*`.
        .filter((r) => !res.body.paths[r.path.replace(/:(\w+)/g, '{$1}').replace(/\/?\*$/, '/{*}')]?.[r.method.toLowerCase()])
        .map((r) => `${r.method} ${r.path}`);
      assert.deepEqual(undocumented, []);
      assert.equal(res.body.paths['/openapi.json'], undefined, 'the document does not list itself');
      const login = res.body.paths['/v1/auth/login'].post;
      assert.ok(login.requestBody.content['application/json'].schema, 'request bodies come from the Zod schemas');
      assert.ok(login.responses['401'], 'problem responses are documented');
    });

    test('/openapi.json says which operations need credentials, and errors are application/problem+json', async () => {
      const doc = (await t.api('GET', '/openapi.json')).body;
      const operations = Object.entries<Record<string, any>>(doc.paths).flatMap(([path, ops]) => Object.entries(ops).map(([method, op]) => ({ path, method: method.toUpperCase(), op })));
      const open = operations.filter((o) => Array.isArray(o.op.security) && o.op.security.length === 0).map((o) => `${o.method} ${o.path}`);
      assert.deepEqual(open.sort(), [
        'GET /.well-known/jwks.json', 'GET /health', 'GET /metrics', 'GET /ready',
        'GET /v1/auth/providers', 'GET /v1/auth/oauth/{provider}/authorize', 'GET /v1/auth/oauth/{provider}/callback',
        'GET /v1/notifications/push/vapid-public-key', 'GET /v1/notifications/unsubscribe', 'GET /v1/shared/conversation',
        'OPTIONS /v1/files/uploads', 'OPTIONS /v1/files/uploads/{id}',
        'POST /v1/auth/login', 'POST /v1/auth/mfa/verify', 'POST /v1/auth/password/forgot', 'POST /v1/auth/password/reset', 'POST /v1/auth/refresh', 'POST /v1/auth/register', 'POST /v1/auth/verify-email',
        'POST /v1/notifications/unsubscribe',
      ].sort());
      // Every other operation, called without credentials, is a 401 whatever its parameters and body (the guard runs first).
      const id = '01a24bb6-5f35-734d-86fd-db8517601bbb';
      const wrong: string[] = [];
      for (const o of operations) {
        if (open.includes(`${o.method} ${o.path}`) || o.path === '/v1/ws') continue; // the socket authenticates on its own upgrade (426 to plain HTTP)
        const url = o.path.replace('{*}', 'x').replace(/\{[^}]+\}/g, id);
        const bodyless = ['GET', 'HEAD', 'OPTIONS'].includes(o.method);
        const res = await fetch(`${t.url}${url}`, { method: o.method, headers: bodyless ? {} : { 'content-type': 'application/json' }, body: bodyless ? undefined : '{}' });
        if (res.status !== 401) wrong.push(`${o.method} ${o.path}: ${res.status}`);
        await res.arrayBuffer();
      }
      assert.deepEqual(wrong, []);
      // The error bodies' media type, as sent (sendProblem), even where success is an HTML page.
      for (const [path, method] of [['/v1/auth/login', 'post'], ['/v1/notifications/unsubscribe', 'get'], ['/v1/conversations', 'get']] as const) {
        assert.deepEqual(Object.keys(doc.paths[path][method].responses['400'].content), ['application/problem+json'], `${method} ${path}`);
      }
      const sent = await t.api('POST', '/v1/auth/login', { body: { email: 1 } });
      assert.match(sent.headers.get('content-type')!, /^application\/problem\+json/);
      // The gateway's errors in OpenAI's and Anthropic's shapes, each declared with that shape's schema.
      for (const [path, schema, check] of [
        ['/v1/chat/completions', 'OpenAIError', (b: any) => typeof b.error.message === 'string' && typeof b.error.type === 'string'],
        ['/v1/messages', 'AnthropicError', (b: any) => b.type === 'error' && typeof b.error.type === 'string' && typeof b.error.message === 'string'],
      ] as const) {
        const res = await t.api('POST', path, { body: {} });
        assert.equal(res.status, 401, res.text);
        assert.ok(check(res.body), `${path}: ${res.text}`);
        assert.equal(doc.paths[path].post.responses['401'].content['application/json'].schema.$ref, `#/components/schemas/${schema}`);
        assert.ok(doc.components.schemas[schema].properties.error, schema);
      }
    });

    test('/docs serves an HTML page over the document, and the script it loads', async () => {
      const res = await fetch(`${t.url}/docs/`);
      assert.equal(res.status, 200);
      assert.match(res.headers.get('content-type')!, /^text\/html/);
      const html = await res.text();
      assert.match(html, /<html[\s\S]*<script/);
      assert.match(html, /openapi\.json/);
      assert.equal(res.headers.get('x-frame-options'), 'DENY');
      assert.equal(res.headers.get('content-security-policy'), "frame-ancestors 'none'");
      assert.equal(res.headers.get('x-content-type-options'), 'nosniff');
      const bare = await fetch(`${t.url}/docs`, { redirect: 'manual' });
      assert.equal(bare.status, 301);
      assert.equal(bare.headers.get('location'), '/docs/');
      const script = await fetch(`${t.url}/docs/js/scalar.js`);
      assert.equal(script.status, 200);
      assert.match(script.headers.get('content-type')!, /javascript/);
      assert.ok((await script.text()).length > 1_000_000, 'the bundle, whole');
    });

    test('an unknown route is a 404 problem; every response carries a request id', async () => {
      const res = await t.api('GET', '/v1/nothing-here');
      assert.equal(res.status, 404);
      assert.match(res.headers.get('content-type')!, /^application\/problem\+json/);
      assert.equal(res.body.code, 'route_not_found');
      assert.match(res.headers.get('x-request-id')!, /^[0-9a-f-]{36}$/);
      assert.equal(res.body.requestId, res.headers.get('x-request-id'));
      const given = await t.api('GET', '/health', { headers: { 'x-request-id': 'lb-trace.42' } });
      assert.equal(given.headers.get('x-request-id'), 'lb-trace.42', 'a sane incoming id is kept');
      const odd = await t.api('GET', '/health', { headers: { 'x-request-id': 'no spaces <script>' } });
      assert.notEqual(odd.headers.get('x-request-id'), 'no spaces <script>', 'anything else is replaced');
    });
  });

  describe(`when the database is gone [${backend}]`, () => {
    let app: App;
    let url: string;
    let closeDatabase: () => Promise<void>;
    const logs: Array<Record<string, any>> = [];
    let drop: (() => Promise<void>) | undefined;

    before(async () => {
      ({ app, url, closeDatabase, drop } = await appWithCapturedLogs(backend, logs));
      await closeDatabase();
    });
    after(async () => {
      await app.close();
      await drop?.();
    });

    test('/ready is 503 and says which check failed', async () => {
      const res = await fetch(`${url}/ready`);
      assert.equal(res.status, 503);
      const body = (await res.json()) as { status: string; checks: Record<string, string> };
      assert.equal(body.status, 'unavailable');
      assert.equal(body.checks.database, 'down');
    });

    test('an unexpected error is a 500 problem with a request id and nothing internal; the log has the details', async () => {
      const res = await fetch(`${url}/v1/auth/login`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-request-id': 'trace-500' },
        body: JSON.stringify({ email: 'someone@example.com', password: 'a long password' }),
      });
      assert.equal(res.status, 500);
      assert.match(res.headers.get('content-type')!, /^application\/problem\+json/);
      const text = await res.text();
      const body = JSON.parse(text);
      assert.equal(body.code, 'internal_error');
      assert.equal(body.status, 500);
      assert.equal(body.requestId, 'trace-500');
      assert.deepEqual(Object.keys(body).sort(), ['code', 'detail', 'instance', 'requestId', 'status', 'title', 'type']);
      assert.doesNotMatch(text, /\bat \S+ \(|\.ts:\d+|pglite|pool|closed|select /i, 'no stack, file or driver message');

      const logged = logs.filter((l) => l.reqId === 'trace-500');
      assert.ok(logged.some((l) => l.msg === 'incoming request'));
      const error = logged.find((l) => l.level === 50);
      assert.ok(error?.err?.stack, 'the error and its stack are logged under the request id');
      assert.ok(logged.some((l) => l.msg === 'request completed' && l.res?.statusCode === 500));
    });

    test("credentials in a URL's query (a token, OAuth's code and state, a signature) are not logged; the rest of it is", async () => {
      await fetch(`${url}/v1/notifications/unsubscribe?token=tok-SECRET1&category=x&access_token=SECRET2&code=SECRET3&state=SECRET4&signature=SECRET5`, { headers: { 'x-request-id': 'trace-query' } });
      const incoming = logs.find((l) => l.reqId === 'trace-query' && l.msg === 'incoming request');
      assert.equal(incoming?.req?.url, '/v1/notifications/unsubscribe?token=[redacted]&category=x&access_token=[redacted]&code=[redacted]&state=[redacted]&signature=[redacted]');
      assert.doesNotMatch(JSON.stringify(logs), /SECRET/);
    });
  });
}

/** An app whose pino lines land in `logs`, with a handle to close its database underneath it. */
async function appWithCapturedLogs(backend: Backend, logs: Array<Record<string, any>>) {
  const sink = new Writable({
    write(chunk, _enc, done) {
      for (const line of String(chunk).split('\n')) if (line) logs.push(JSON.parse(line));
      done();
    },
  });
  const env: Record<string, string> = { NODE_ENV: 'test', PARLEY_DATA_DIR: 'memory://', PARLEY_MASTER_KEY: randomBytes(32).toString('base64') };
  let pg: Awaited<ReturnType<typeof freshPostgresDatabase>> | undefined;
  if (backend === 'postgres') {
    pg = await freshPostgresDatabase();
    env.DATABASE_URL = pg.url;
  }
  const deps = await createDeps(loadConfig(env), { logger: createLogger('info', sink) });
  const app = await buildApp(deps);
  await app.listen({ port: 0, host: '127.0.0.1' });
  const { port } = app.server.address() as { port: number };
  return { app, url: `http://127.0.0.1:${port}`, closeDatabase: () => deps.database.close(), drop: pg?.drop };
}
