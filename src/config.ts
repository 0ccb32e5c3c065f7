import { isIP } from 'node:net';
import path from 'node:path';
import { z } from 'zod';
import { ConfigError } from './errors.ts';
import { MODULES } from './modules/index.ts';
import type { ModuleSettings } from './modules/module.ts';
import { busEnv, busSettings } from './platform/bus/settings.ts';
import type { BusOptions } from './platform/bus/bus.ts';
import type { DnsSettings } from './platform/net/host-lookup.ts';
import { dnsEnv, dnsSettings } from './platform/net/settings.ts';
import type { S3Settings } from './platform/storage/s3-storage.ts';
import { envBool, envInt, envList, envMs } from './platform/config/env.ts';
import { DEFAULT_PGLITE_SHARED_BUFFERS_MB } from './platform/db/pglite.ts';
import { checkScheduleOverrides } from './worker.ts';

export { ConfigError };

const bool = envBool;
const list = envList;

/** proxy-addr's names for ranges of addresses, which TRUST_PROXY may list beside addresses and CIDR ranges. */
const PROXY_RANGES = new Set(['loopback', 'linklocal', 'uniquelocal']);

/**
 * Whom to believe about the client's address (X-Forwarded-For): `false`, nobody; `true`, every hop, so the header's
 * first address, which is right only behind a proxy that overwrites the header (as deploy/nginx does), since a
 * client writes the first addresses itself; or the proxies' addresses and CIDR ranges, comma-separated (and
 * `loopback`, `linklocal`, `uniquelocal`): walking the header from its right end, where only proxies wrote, each
 * trusted hop is skipped and the first other address is the client's. (A hop count is not offered: Fastify
 * trusts none, since a count cannot tell a proxy from a client that connects directly.)
 */
const trustProxyEnv = z
  .string()
  .trim()
  .transform((v, ctx): boolean | string[] => {
    const word = v.toLowerCase();
    if (['true', 'yes', '1'].includes(word)) return true;
    if (['false', 'no', '0'].includes(word)) return false;
    const entries = envList.parse(v);
    const bad = entries.find((e) => !PROXY_RANGES.has(e) && !isCidr(e));
    if (bad === undefined && entries.length) return entries;
    ctx.addIssue({ code: 'custom', message: `true, false, or the proxies' addresses and CIDR ranges (${bad ?? 'none given'} is none of these)` });
    return z.NEVER;
  });

function isCidr(text: string): boolean {
  const [address = '', prefix, ...rest] = text.split('/');
  const version = isIP(address);
  if (!version || rest.length) return false;
  return prefix === undefined || (/^\d{1,3}$/.test(prefix) && Number(prefix) <= (version === 4 ? 32 : 128));
}
const GIB = 1024 ** 3;

/**
 * ALLOWED_ORIGINS entries as a browser's Origin header writes them (URL.origin: no trailing slash or default port,
 * a lower-case host): compared as strings, an entry written any other way would never match. `*`, a path and
 * other schemes are refused, not ignored.
 */
function toOrigins(entries: string[], ctx: z.core.$RefinementCtx<string[]>): string[] {
  return entries.map((entry) => {
    let url: URL | undefined;
    try {
      url = /^https?:\/\/[^/?#]+\/?$/i.test(entry) ? new URL(entry) : undefined;
    } catch {}
    if (url && !url.username && !url.password) return url.origin;
    ctx.addIssue({ code: 'custom', message: `"${entry}" is not an origin: http(s)://host[:port], without a path, one origin per entry (no *)` });
    return entry;
  });
}

/** The platform's environment variables; each module adds its own section (see MODULES). */
const coreEnv = {
  NODE_ENV: z.enum(['development', 'production', 'test']).default('development'),
  PORT: envInt(0, 65535).default(3000),
  HOST: z.string().default('0.0.0.0'),
  PROCESSES: envInt(1, 9999).optional(),
  // http(s) only: `chat.example.com:443` parses as a URL of scheme `chat.example.com:`, whose origin is "null".
  PUBLIC_URL: z.url({ protocol: /^https?$/, error: 'an http:// or https:// URL (scheme included)' }).optional(),
  PARLEY_DATA_DIR: z.string().default('./data'),
  DATABASE_URL: z.url({ protocol: /^postgres(ql)?$/ }).optional(),
  DATABASE_POOL_SIZE: envInt(1, 200).default(10),
  DATABASE_QUERY_TIMEOUT_MS: envMs(0, 3_600_000).default(60_000),
  DATABASE_CONNECT_TIMEOUT_MS: envMs(100, 600_000).default(5_000),
  PGLITE_SHARED_BUFFERS_MB: envInt(1, 1024).default(DEFAULT_PGLITE_SHARED_BUFFERS_MB),
  REDIS_URL: z.url({ protocol: /^rediss?$/ }).optional(),
  REDIS_PREFIX: z.string().default('parley:'),
  SMTP_URL: z.url({ protocol: /^smtps?$/ }).optional(),
  MAIL_FROM: z.string().default('Parley <no-reply@localhost>'),
  PARLEY_MASTER_KEY: z
    .string()
    .refine((v) => Buffer.from(v, 'base64').length === 32, 'must be 32 bytes, base64-encoded')
    .optional(),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  // Bodies are read into memory whole: a gigabyte is past any JSON request.
  BODY_LIMIT_BYTES: envInt(1, GIB).default(1_048_576),
  GATEWAY_BODY_LIMIT_BYTES: envInt(1, GIB).default(33_554_432),
  TRUST_PROXY: trustProxyEnv.default(false),
  ALLOWED_ORIGINS: list.transform(toOrigins).default([]),
  S3_ENDPOINT: z.url().optional(),
  S3_BUCKET: z.string().min(3).max(63).optional(),
  S3_REGION: z.string().default('us-east-1'),
  S3_ACCESS_KEY_ID: z.string().optional(),
  S3_SECRET_ACCESS_KEY: z.string().optional(),
  S3_FORCE_PATH_STYLE: bool.optional(),
  S3_PUBLIC_ENDPOINT: z.url().optional(),
  S3_REQUEST_TIMEOUT_MS: envMs(100, 600_000).default(30_000),
  S3_PREFIX: z
    .string()
    .refine((v) => v.replace(/\/$/, '').split('/').every((s) => /^[A-Za-z0-9._-]+$/.test(s) && s !== '.' && s !== '..'), 'path segments of letters, digits, . _ - (not . or ..)')
    .optional(),
  ...busEnv,
  ...dnsEnv,
};

/** Every environment variable Parley reads, validated once at start: the core's and each module's. Built on first use. */
let envSchema: z.ZodObject | undefined;
const schemaOfEnv = () => (envSchema ??= z.object(Object.assign({}, coreEnv, ...MODULES.map((m) => m.config?.env ?? {}))));

/** The platform's settings; each module's section is under its name (ModuleSettings). */
export interface CoreConfig {
  env: 'development' | 'production' | 'test';
  port: number;
  host: string;
  /** `start`/`serve`/`worker` processes behind one port (PROCESSES; `--processes` wins); unset: one per CPU on PostgreSQL + Redis, else one. */
  processes?: number;
  publicUrl: string;
  dataDir: string;
  databaseUrl?: string;
  databasePoolSize: number;
  /** PostgreSQL: the longest a query may go unanswered (0: no limit), and a new connection may take. */
  databaseQueryTimeoutMs: number;
  databaseConnectTimeoutMs: number;
  /** The embedded database's page cache (PGlite's shared_buffers), in MB. */
  pgliteSharedBuffersMb: number;
  redisUrl?: string;
  redisPrefix: string;
  smtpUrl?: string;
  mailFrom: string;
  masterKey?: Buffer;
  logLevel: string;
  bodyLimit: number;
  /** The gateway's model calls (chat completions, messages, responses, embeddings): agents' long conversations and base64 images; Anthropic's own limit by default. */
  gatewayBodyLimit: number;
  /** Whom to believe about the client's address: see TRUST_PROXY. */
  trustProxy: boolean | string[];
  allowedOrigins: string[];
  /** Event bus delivery: retries, dead-letter threshold, reclaim of a dead consumer's events, stream length. */
  bus: BusOptions;
  /** How user-given hosts are resolved (webhooks, Slack, push, MCP, fetch_url): name servers and the time a lookup may take. */
  dns: DnsSettings;
  /** Where blobs go: files under the data directory (none for `memory://`: a temporary one), or an S3-compatible bucket. */
  storage: { kind: 'disk'; dir?: string } | ({ kind: 's3' } & S3Settings);
}

export type Config = CoreConfig & ModuleSettings;

/** Builds the config from an environment; throws ConfigError naming every bad variable. */
export function loadConfig(env: Record<string, string | undefined>): Config {
  const cleaned = Object.fromEntries(Object.entries(env).filter(([, v]) => v !== undefined && v !== ''));
  const parsed = schemaOfEnv().safeParse(cleaned);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((i) => `  ${i.path.join('.')}: ${i.message}`);
    throw new ConfigError(`Invalid configuration:\n${lines.join('\n')}`);
  }
  const e = parsed.data as z.output<z.ZodObject<typeof coreEnv>> & Record<string, unknown>;
  const publicUrl = (e.PUBLIC_URL ?? `http://localhost:${e.PORT}`).replace(/\/$/, '');
  const core: CoreConfig = {
    env: e.NODE_ENV,
    port: e.PORT,
    host: e.HOST,
    processes: e.PROCESSES,
    publicUrl,
    dataDir: e.PARLEY_DATA_DIR === 'memory://' ? e.PARLEY_DATA_DIR : path.resolve(e.PARLEY_DATA_DIR),
    databaseUrl: e.DATABASE_URL,
    databasePoolSize: e.DATABASE_POOL_SIZE,
    databaseQueryTimeoutMs: e.DATABASE_QUERY_TIMEOUT_MS,
    databaseConnectTimeoutMs: e.DATABASE_CONNECT_TIMEOUT_MS,
    pgliteSharedBuffersMb: e.PGLITE_SHARED_BUFFERS_MB,
    redisUrl: e.REDIS_URL,
    redisPrefix: e.REDIS_PREFIX,
    smtpUrl: e.SMTP_URL,
    mailFrom: e.MAIL_FROM,
    masterKey: e.PARLEY_MASTER_KEY ? Buffer.from(e.PARLEY_MASTER_KEY, 'base64') : undefined,
    logLevel: e.LOG_LEVEL,
    bodyLimit: e.BODY_LIMIT_BYTES,
    gatewayBodyLimit: e.GATEWAY_BODY_LIMIT_BYTES,
    trustProxy: e.TRUST_PROXY,
    allowedOrigins: e.ALLOWED_ORIGINS.length ? e.ALLOWED_ORIGINS : [new URL(publicUrl).origin],
    bus: busSettings(e),
    dns: dnsSettings(e),
    storage: storageSettings(e),
  };
  const sections = Object.fromEntries(MODULES.flatMap((m) => (m.config ? [[m.name, m.config.read(e)]] : [])));
  const config = { ...core, ...sections } as Config;
  checkScheduleOverrides(config);
  return config;
}

function storageSettings(e: z.output<z.ZodObject<typeof coreEnv>>): CoreConfig['storage'] {
  const s3Set = [e.S3_ENDPOINT, e.S3_ACCESS_KEY_ID, e.S3_SECRET_ACCESS_KEY, e.S3_PREFIX, e.S3_PUBLIC_ENDPOINT].some((v) => v !== undefined);
  if (!e.S3_BUCKET) {
    if (s3Set) throw new ConfigError('Invalid configuration:\n  S3_BUCKET: required when S3_ENDPOINT, S3_ACCESS_KEY_ID, S3_SECRET_ACCESS_KEY, S3_PREFIX or S3_PUBLIC_ENDPOINT is set');
    const dataDir = e.PARLEY_DATA_DIR === 'memory://' ? undefined : path.join(path.resolve(e.PARLEY_DATA_DIR), 'files');
    return { kind: 'disk', dir: dataDir };
  }
  if (!e.S3_ACCESS_KEY_ID !== !e.S3_SECRET_ACCESS_KEY) {
    throw new ConfigError('Invalid configuration:\n  S3_ACCESS_KEY_ID and S3_SECRET_ACCESS_KEY must be set together (or neither, for the SDK\'s own credential chain)');
  }
  return {
    kind: 's3',
    endpoint: e.S3_ENDPOINT,
    bucket: e.S3_BUCKET,
    region: e.S3_REGION,
    accessKeyId: e.S3_ACCESS_KEY_ID,
    secretAccessKey: e.S3_SECRET_ACCESS_KEY,
    // Self-hosted services (MinIO) need path-style addressing; AWS itself prefers virtual hosts.
    forcePathStyle: e.S3_FORCE_PATH_STYLE ?? e.S3_ENDPOINT !== undefined,
    prefix: e.S3_PREFIX,
    publicEndpoint: e.S3_PUBLIC_ENDPOINT,
    requestTimeoutMs: e.S3_REQUEST_TIMEOUT_MS,
  };
}
