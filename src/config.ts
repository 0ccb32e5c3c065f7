import path from 'node:path';
import { z } from 'zod';
import { ConfigError } from './errors.ts';
import { MODULES } from './modules/index.ts';
import type { ModuleSettings } from './modules/module.ts';
import { busEnv, busSettings } from './platform/bus/settings.ts';
import type { BusOptions } from './platform/bus/bus.ts';

export { ConfigError };

const bool = z
  .enum(['true', 'false', '1', '0', 'yes', 'no'])
  .transform((v) => v === 'true' || v === '1' || v === 'yes');

const list = z
  .string()
  .transform((v) => v.split(',').map((s) => s.trim()).filter(Boolean));

/** The platform's environment variables; each module adds its own section (see MODULES). */
const coreEnv = {
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
  ...busEnv,
};

/** Every environment variable Parley reads, validated once at start: the core's and each module's. Built on first use. */
let envSchema: z.ZodObject | undefined;
const schemaOfEnv = () => (envSchema ??= z.object(Object.assign({}, coreEnv, ...MODULES.map((m) => m.config?.env ?? {}))));

/** The platform's settings; each module's section is under its name (ModuleSettings). */
export interface CoreConfig {
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
  /** Event bus delivery: retries, dead-letter threshold, reclaim of a dead consumer's events, stream length. */
  bus: BusOptions;
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
    bus: busSettings(e),
  };
  const sections = Object.fromEntries(MODULES.flatMap((m) => (m.config ? [[m.name, m.config.read(e)]] : [])));
  return { ...core, ...sections } as Config;
}
