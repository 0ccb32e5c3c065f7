import path from 'node:path';
import { z } from 'zod';
import { aiEnv, aiSettings, type AiSettings } from './modules/ai/settings.ts';
import { usageEnv, usageSettings, type UsageSettings } from './modules/usage/settings.ts';
import { limitsEnv, limitSettings, type LimitSettings } from './modules/limits/settings.ts';
import { busEnv, busSettings } from './platform/bus/settings.ts';
import type { BusOptions } from './platform/bus/bus.ts';
import { realtimeEnv, realtimeSettings, type RealtimeSettings } from './modules/realtime/settings.ts';
import { jobsEnv, jobSettings, type JobSettings } from './modules/jobs/settings.ts';

const bool = z
  .enum(['true', 'false', '1', '0', 'yes', 'no'])
  .transform((v) => v === 'true' || v === '1' || v === 'yes');

const list = z
  .string()
  .transform((v) => v.split(',').map((s) => s.trim()).filter(Boolean));

const seconds = z.coerce.number().int().positive();

const oauthClient = (prefix: string) => ({
  [`${prefix}_CLIENT_ID`]: z.string().min(1).optional(),
  [`${prefix}_CLIENT_SECRET`]: z.string().min(1).optional(),
});

/** Every environment variable Parley reads, validated once at start. */
const envSchema = z.object({
  NODE_ENV: z.enum(['development', 'production', 'test']).default('development'),
  PORT: z.coerce.number().int().min(0).max(65535).default(3000),
  HOST: z.string().default('0.0.0.0'),
  PUBLIC_URL: z.url().optional(),
  PARLEY_DATA_DIR: z.string().default('./data'),
  DATABASE_URL: z.url({ protocol: /^postgres(ql)?$/ }).optional(),
  DATABASE_POOL_SIZE: z.coerce.number().int().min(1).max(200).default(10),
  REDIS_URL: z.url({ protocol: /^rediss?$/ }).optional(),
  REDIS_PREFIX: z.string().default('parley:'),
  SMTP_URL: z.url({ protocol: /^smtps?$/ }).optional(),
  MAIL_FROM: z.string().default('Parley <no-reply@localhost>'),
  PARLEY_MASTER_KEY: z
    .string()
    .refine((v) => Buffer.from(v, 'base64').length === 32, 'must be 32 bytes, base64-encoded')
    .optional(),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  BODY_LIMIT_BYTES: z.coerce.number().int().positive().default(1_048_576),
  TRUST_PROXY: bool.default(false),
  ALLOWED_ORIGINS: list.default([]),
  ACCESS_TOKEN_TTL_SECONDS: seconds.default(900),
  REFRESH_TOKEN_TTL_SECONDS: seconds.default(60 * 60 * 24 * 30),
  REFRESH_REUSE_GRACE_SECONDS: z.coerce.number().int().min(0).default(10),
  EMAIL_TOKEN_TTL_SECONDS: seconds.default(60 * 60 * 24),
  RESET_TOKEN_TTL_SECONDS: seconds.default(60 * 60),
  REQUIRE_EMAIL_VERIFICATION: bool.default(false),
  AUTH_RATE_LIMIT_PER_IP: z.coerce.number().int().positive().default(30),
  AUTH_RATE_LIMIT_PER_ACCOUNT: z.coerce.number().int().positive().default(10),
  AUTH_RATE_LIMIT_WINDOW_SECONDS: seconds.default(900),
  OIDC_ISSUER: z.url().optional(),
  OIDC_NAME: z.string().default('oidc'),
  ...oauthClient('OIDC'),
  ...oauthClient('GOOGLE'),
  ...oauthClient('MICROSOFT'),
  MICROSOFT_TENANT: z.string().default('common'),
  ...oauthClient('GITHUB'),
  GITHUB_BASE_URL: z.url().default('https://github.com'),
  GITHUB_API_URL: z.url().default('https://api.github.com'),
  OAUTH_ALLOW_INSECURE_HTTP: bool.default(false),
  CHAT_MAX_MESSAGE_CHARS: z.coerce.number().int().positive().default(100_000),
  CHAT_MAX_STREAM_SECONDS: seconds.default(300),
  CHAT_STREAM_RETENTION_SECONDS: seconds.default(600),
  ...aiEnv,
  ...usageEnv,
  ...limitsEnv,
  ...busEnv,
  ...realtimeEnv,
  ...jobsEnv,
});

export type Env = z.input<typeof envSchema>;

export interface OAuthProviderConfig {
  id: string;
  kind: 'oidc' | 'github';
  issuer?: string;
  clientId: string;
  clientSecret: string;
  scopes: string[];
  /** GitHub only: where its web and API endpoints live. */
  baseUrl?: string;
  apiUrl?: string;
}

export interface Config {
  env: 'development' | 'production' | 'test';
  port: number;
  host: string;
  publicUrl: string;
  dataDir: string;
  databaseUrl?: string;
  databasePoolSize: number;
  redisUrl?: string;
  redisPrefix: string;
  smtpUrl?: string;
  mailFrom: string;
  masterKey?: Buffer;
  logLevel: string;
  bodyLimit: number;
  trustProxy: boolean;
  allowedOrigins: string[];
  auth: {
    /** `iss` of access tokens: PUBLIC_URL when set, else a constant, so tokens survive a port change. */
    issuer: string;
    accessTtl: number;
    refreshTtl: number;
    reuseGrace: number;
    emailTokenTtl: number;
    resetTokenTtl: number;
    requireEmailVerification: boolean;
    rateLimit: { perIp: number; perAccount: number; windowSeconds: number };
  };
  oauth: { providers: OAuthProviderConfig[]; allowInsecureHttp: boolean };
  ai: AiSettings;
  usage: UsageSettings;
  /** Request and token rate limits per role, and when violations become a ban. */
  limits: LimitSettings;
  /** Event bus delivery: retries, dead-letter threshold, reclaim of a dead consumer's events, stream length. */
  bus: BusOptions;
  /** The /v1/ws gateway: auth timeout, heartbeat, backpressure and connection limits. */
  realtime: RealtimeSettings;
  /** Background jobs: schedule overrides, the BullMQ lock time. */
  jobs: JobSettings;
  chat: {
    maxMessageChars: number;
    /** A generation still running after this long is aborted and fails with `stream_timeout`. */
    maxStreamSeconds: number;
    /** How long a finished generation's events stay replayable from the stream buffer. */
    streamRetentionSeconds: number;
  };
}

export class ConfigError extends Error {}

/** Builds the config from an environment; throws ConfigError naming every bad variable. */
export function loadConfig(env: Record<string, string | undefined>): Config {
  const cleaned = Object.fromEntries(Object.entries(env).filter(([, v]) => v !== undefined && v !== ''));
  const parsed = envSchema.safeParse(cleaned);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((i) => `  ${i.path.join('.')}: ${i.message}`);
    throw new ConfigError(`Invalid configuration:\n${lines.join('\n')}`);
  }
  const e = parsed.data;
  const ai = aiSettings(e);
  if (ai.problems.length) throw new ConfigError(`Invalid configuration:\n${ai.problems.map((p) => `  ${p}`).join('\n')}`);
  const publicUrl = (e.PUBLIC_URL ?? `http://localhost:${e.PORT}`).replace(/\/$/, '');
  return {
    env: e.NODE_ENV,
    port: e.PORT,
    host: e.HOST,
    publicUrl,
    dataDir: e.PARLEY_DATA_DIR === 'memory://' ? e.PARLEY_DATA_DIR : path.resolve(e.PARLEY_DATA_DIR),
    databaseUrl: e.DATABASE_URL,
    databasePoolSize: e.DATABASE_POOL_SIZE,
    redisUrl: e.REDIS_URL,
    redisPrefix: e.REDIS_PREFIX,
    smtpUrl: e.SMTP_URL,
    mailFrom: e.MAIL_FROM,
    masterKey: e.PARLEY_MASTER_KEY ? Buffer.from(e.PARLEY_MASTER_KEY, 'base64') : undefined,
    logLevel: e.LOG_LEVEL,
    bodyLimit: e.BODY_LIMIT_BYTES,
    trustProxy: e.TRUST_PROXY,
    allowedOrigins: e.ALLOWED_ORIGINS.length ? e.ALLOWED_ORIGINS : [new URL(publicUrl).origin],
    auth: {
      issuer: e.PUBLIC_URL ? publicUrl : 'urn:parley',
      accessTtl: e.ACCESS_TOKEN_TTL_SECONDS,
      refreshTtl: e.REFRESH_TOKEN_TTL_SECONDS,
      reuseGrace: e.REFRESH_REUSE_GRACE_SECONDS,
      emailTokenTtl: e.EMAIL_TOKEN_TTL_SECONDS,
      resetTokenTtl: e.RESET_TOKEN_TTL_SECONDS,
      requireEmailVerification: e.REQUIRE_EMAIL_VERIFICATION,
      rateLimit: {
        perIp: e.AUTH_RATE_LIMIT_PER_IP,
        perAccount: e.AUTH_RATE_LIMIT_PER_ACCOUNT,
        windowSeconds: e.AUTH_RATE_LIMIT_WINDOW_SECONDS,
      },
    },
    oauth: { providers: oauthProviders(e), allowInsecureHttp: e.OAUTH_ALLOW_INSECURE_HTTP },
    ai: ai.settings,
    usage: usageSettings(e),
    limits: limitSettings(e),
    bus: busSettings(e),
    realtime: realtimeSettings(e),
    jobs: jobSettings(e),
    chat: { maxMessageChars: e.CHAT_MAX_MESSAGE_CHARS, maxStreamSeconds: e.CHAT_MAX_STREAM_SECONDS, streamRetentionSeconds: e.CHAT_STREAM_RETENTION_SECONDS },
  };
}

function oauthProviders(e: z.output<typeof envSchema>): OAuthProviderConfig[] {
  const providers: OAuthProviderConfig[] = [];
  const creds = (prefix: string) => {
    const id = e[`${prefix}_CLIENT_ID` as keyof typeof e] as string | undefined;
    const secret = e[`${prefix}_CLIENT_SECRET` as keyof typeof e] as string | undefined;
    if (!id && !secret) return undefined;
    if (!id || !secret) {
      throw new ConfigError(`Invalid configuration:\n  ${prefix}_CLIENT_ID and ${prefix}_CLIENT_SECRET must be set together`);
    }
    return { clientId: id, clientSecret: secret };
  };
  const oidc = creds('OIDC');
  if (oidc) {
    if (!e.OIDC_ISSUER) throw new ConfigError('Invalid configuration:\n  OIDC_ISSUER: required when OIDC_CLIENT_ID is set');
    providers.push({ id: e.OIDC_NAME, kind: 'oidc', issuer: e.OIDC_ISSUER, scopes: ['openid', 'email', 'profile'], ...oidc });
  }
  const google = creds('GOOGLE');
  if (google) providers.push({ id: 'google', kind: 'oidc', issuer: 'https://accounts.google.com', scopes: ['openid', 'email', 'profile'], ...google });
  const microsoft = creds('MICROSOFT');
  if (microsoft) {
    providers.push({
      id: 'microsoft',
      kind: 'oidc',
      issuer: `https://login.microsoftonline.com/${e.MICROSOFT_TENANT}/v2.0`,
      scopes: ['openid', 'email', 'profile'],
      ...microsoft,
    });
  }
  const github = creds('GITHUB');
  if (github) providers.push({ id: 'github', kind: 'github', scopes: ['read:user', 'user:email'], baseUrl: e.GITHUB_BASE_URL, apiUrl: e.GITHUB_API_URL, ...github });
  return providers;
}
