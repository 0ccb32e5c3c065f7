import assert from 'node:assert/strict';
import { freshPostgresDatabase, type ApiResponse } from './app.ts';
import { startTcpProxy } from './tcp-proxy.ts';

/** A request with how long its answer took. */
export async function timed(call: () => Promise<ApiResponse>): Promise<ApiResponse & { ms: number }> {
  const started = Date.now();
  const res = await call();
  return { ...res, ms: Date.now() - started };
}

/** A quick 503 `dependency_unavailable` naming the dependency (problem+json, or an OpenAI-shaped error), with Retry-After. */
export function assertUnavailable(res: ApiResponse & { ms: number }, what: string, opts: { dependency: string; withinMs: number }) {
  assert.equal(res.status, 503, `${what}: ${res.text}`);
  const body = res.body as { code?: string; detail?: string; error?: { code?: string; message?: string } };
  assert.equal(body.code ?? body.error?.code, 'dependency_unavailable', what);
  assert.equal(body.detail ?? body.error?.message, `${opts.dependency} is unavailable`, what);
  assert.ok(Number(res.headers.get('retry-after')) > 0, `${what}: a Retry-After header`);
  assert.ok(res.ms < opts.withinMs, `${what}: answered in ${res.ms} ms`);
}

/** A fresh PostgreSQL database reached through a TCP proxy the test can stall or cut; `url` goes through the proxy. */
export async function proxiedPostgres() {
  const database = await freshPostgresDatabase();
  const direct = new URL(database.url);
  const proxy = await startTcpProxy({ host: direct.hostname, port: Number(direct.port || 5432) });
  const url = new URL(database.url);
  url.hostname = proxy.host;
  url.port = String(proxy.port);
  return {
    proxy,
    url: url.toString(),
    /** Another proxy to the same database, for connections a test must keep apart. */
    another: () => startTcpProxy({ host: direct.hostname, port: Number(direct.port || 5432) }).then((p) => ({ proxy: p, url: Object.assign(new URL(database.url), { hostname: p.host, port: String(p.port) }).toString() })),
    async close() {
      await proxy.close();
      await database.drop();
    },
  };
}
