import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { buildApp } from '../../src/app.ts';
import { loadConfig } from '../../src/config.ts';
import { createDeps, type Deps } from '../../src/deps.ts';
import type { App } from '../../src/http/types.ts';
import { createServices, type Services } from '../../src/services.ts';
import { createLogger } from '../../src/platform/observability/logger.ts';
import { defineWork, startWorker } from '../../src/worker.ts';
import { migratedPgliteSnapshot } from './pglite-snapshot.ts';

export type Backend = 'embedded' | 'postgres';

/** PGlite and in-process adapters always; PostgreSQL + Redis too when DATABASE_URL and REDIS_URL are set. */
export function backends(): Backend[] {
  return process.env.DATABASE_URL ? ['embedded', 'postgres'] : ['embedded'];
}

export interface TestApp {
  app: App;
  deps: Deps;
  services: Services;
  url: string;
  backend: Backend;
  /** Real HTTP against the listening server. */
  api: (method: string, path: string, opts?: RequestOpts) => Promise<ApiResponse>;
  close(): Promise<void>;
}

export interface RequestOpts {
  body?: unknown;
  /** A raw body sent as-is (for malformed input). */
  raw?: string;
  token?: string;
  headers?: Record<string, string>;
}

export interface ApiResponse {
  status: number;
  headers: Headers;
  body: any;
  text: string;
}

/** A fresh database of its own on the machine's PostgreSQL, so runs never collide. */
export async function freshPostgresDatabase(): Promise<{ url: string; drop(): Promise<void> }> {
  const base = new URL(process.env.DATABASE_URL!);
  const name = `parley_t_${randomBytes(6).toString('hex')}`;
  const admin = new pg.Client({ connectionString: base.toString() });
  await admin.connect();
  await admin.query(`create database ${name}`);
  await admin.end();
  const url = new URL(base);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    async drop() {
      const c = new pg.Client({ connectionString: base.toString() });
      await c.connect();
      await c.query(`drop database if exists ${name} with (force)`);
      await c.end();
    },
  };
}

export interface StartOpts {
  backend?: Backend;
  env?: Record<string, string>;
  /** Share another app's database and Redis prefix: a second instance of the same cluster. */
  sharedWith?: TestApp;
  /** Run the worker role too (queued jobs, schedules), as `parley start` does. Default true. */
  worker?: boolean;
}

export async function startApp(opts: StartOpts = {}): Promise<TestApp> {
  const backend = opts.sharedWith?.backend ?? opts.backend ?? 'embedded';
  let db: { url: string; drop(): Promise<void> } | undefined;
  const env: Record<string, string> = {
    NODE_ENV: 'test',
    LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'silent',
    PORT: '0',
    HOST: '127.0.0.1',
    PARLEY_DATA_DIR: 'memory://',
    PUBLIC_URL: 'http://parley.test',
    PARLEY_MASTER_KEY: randomBytes(32).toString('base64'),
    AUTH_RATE_LIMIT_PER_IP: '10000',
    AUTH_RATE_LIMIT_PER_ACCOUNT: '1000',
    // Request/token limits and bans are tested on their own (test/modules/limits); off elsewhere, benches included.
    RATE_LIMIT_ENABLED: 'false',
  };
  if (opts.sharedWith) {
    const other = opts.sharedWith.deps.config;
    if (other.databaseUrl) env.DATABASE_URL = other.databaseUrl;
    if (other.redisUrl) env.REDIS_URL = other.redisUrl;
    env.REDIS_PREFIX = other.redisPrefix;
    env.PARLEY_MASTER_KEY = other.masterKey!.toString('base64');
    env.PUBLIC_URL = other.publicUrl;
  } else if (backend === 'postgres') {
    db = await freshPostgresDatabase();
    env.DATABASE_URL = db.url;
    if (process.env.REDIS_URL) env.REDIS_URL = process.env.REDIS_URL;
    env.REDIS_PREFIX = `parley:test:${randomBytes(6).toString('hex')}:`;
  }
  Object.assign(env, opts.env);
  const config = loadConfig(env);
  const pgliteSnapshot = config.databaseUrl ? undefined : await migratedPgliteSnapshot();
  const deps = await createDeps(config, { logger: createLogger(config.logLevel), pgliteSnapshot });
  const services = createServices(deps);
  defineWork(deps, services);
  const app = await buildApp(deps, services);
  const worker = opts.worker === false ? undefined : await startWorker(deps);
  await app.listen({ port: 0, host: '127.0.0.1' });
  const address = app.server.address();
  const url = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;

  const api = async (method: string, path: string, o: RequestOpts = {}): Promise<ApiResponse> => {
    const headers: Record<string, string> = { ...o.headers };
    if (o.token) headers.authorization = `Bearer ${o.token}`;
    let body: string | undefined;
    if (o.raw !== undefined) {
      body = o.raw;
      headers['content-type'] ??= 'application/json';
    } else if (o.body !== undefined) {
      body = JSON.stringify(o.body);
      headers['content-type'] = 'application/json';
    }
    const res = await fetch(url + path, { method, headers, body, redirect: 'manual' });
    const text = await res.text();
    let parsed: unknown = text;
    if ((res.headers.get('content-type') ?? '').includes('json') && text) parsed = JSON.parse(text);
    return { status: res.status, headers: res.headers, body: parsed, text };
  };

  return {
    app,
    deps,
    services,
    url,
    backend,
    api,
    async close() {
      await app.close();
      await worker?.stop();
      await deps.close();
      if (db && !opts.sharedWith) await db.drop();
    },
  };
}
