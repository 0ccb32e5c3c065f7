import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { envInt, envMs } from '../../platform/config/env.ts';
import { usdToMicros, type PriceMicros } from './cost.ts';

/**
 * The AI part of the configuration: which providers exist, extra catalog
 * entries, and the retry / timeout / circuit-breaker knobs. config.ts spreads
 * `aiEnv` into its env schema and calls `aiSettings`, so env is still read
 * and validated once, at start.
 */

export type ProviderKind = 'openai' | 'anthropic' | 'mistral' | 'openai-compatible';

export interface ProviderSettings {
  /** Used as the `provider` in `provider:model` ids. */
  id: string;
  kind: ProviderKind;
  baseUrl?: string;
  apiKey?: string;
  /** Models the catalog lists for this provider beyond the built-in table. */
  models: string[];
}

export interface CatalogEntrySettings {
  /** `provider:model` */
  id: string;
  contextWindow?: number | null;
  maxOutputTokens?: number | null;
  /** Takes images as input; unknown models are taken not to. */
  vision?: boolean;
  pricing?: PriceMicros | null;
}

export interface AiSettings {
  defaultModel?: string;
  /** `provider:model` that embeds documents for search; unset, search is full-text only. */
  embeddingModel?: string;
  providers: ProviderSettings[];
  catalog: CatalogEntrySettings[];
  /** Retries of one link after its first attempt fails retryably. */
  retries: number;
  retryBaseMs: number;
  /** Cap on one backoff wait, Retry-After included. */
  retryMaxMs: number;
  /** Give up on an attempt that has produced nothing after this long. */
  firstTokenTimeoutMs: number;
  /** Give up on a started stream that stalls this long between chunks. */
  streamIdleTimeoutMs: number;
  /** Give up on a whole (non-streamed) answer that has not come after this long. */
  answerTimeoutMs: number;
  breaker: { failureThreshold: number; cooldownMs: number };
  /** Large token counts run at once on at most this many threads (token-counter.ts), each stopped after `tokenCountTimeoutMs`. */
  tokenCountThreads: number;
  tokenCountTimeoutMs: number;
}

const providerId = z.string().regex(/^[a-z0-9][a-z0-9_.-]*$/i, 'letters, digits, _ . - (no colon)');

const compatibleEndpoints = z.array(
  z.strictObject({ name: providerId, baseUrl: z.url(), apiKey: z.string().optional(), models: z.array(z.string().min(1)).default([]) }),
);

/** The env fields config.ts validates for this module. */
export const aiEnv = {
  DEFAULT_MODEL: z.string().includes(':', { message: 'must be provider:model' }).optional(),
  EMBEDDING_MODEL: z.string().includes(':', { message: 'must be provider:model' }).optional(),
  OPENAI_API_KEY: z.string().optional(),
  OPENAI_BASE_URL: z.url().optional(),
  ANTHROPIC_API_KEY: z.string().optional(),
  ANTHROPIC_BASE_URL: z.url().optional(),
  MISTRAL_API_KEY: z.string().optional(),
  MISTRAL_BASE_URL: z.url().optional(),
  OPENROUTER_API_KEY: z.string().optional(),
  OPENROUTER_BASE_URL: z.url().default('https://openrouter.ai/api/v1'),
  OLLAMA_BASE_URL: z.url().optional(),
  OPENAI_COMPATIBLE_ENDPOINTS: z.string().optional(),
  PARLEY_AI_CONFIG: z.string().optional(),
  AI_RETRIES: envInt(0, 10).default(2),
  AI_RETRY_BASE_MS: envMs(0).default(500),
  AI_RETRY_MAX_MS: envMs(0).default(10_000),
  AI_FIRST_TOKEN_TIMEOUT_MS: envMs(1).default(30_000),
  AI_STREAM_IDLE_TIMEOUT_MS: envMs(1).default(60_000),
  // As the OpenAI SDK's own default timeout: a client waiting for a whole answer gives up about then too.
  AI_ANSWER_TIMEOUT_MS: envMs(1).default(600_000),
  AI_CIRCUIT_FAILURES: envInt(1, 1000).default(5),
  AI_CIRCUIT_COOLDOWN_MS: envMs(0).default(30_000),
  TOKEN_COUNT_THREADS: envInt(1, 64).default(2),
  // The largest embeddings request (2,048 inputs of 32,000 characters) takes seconds of prose, minutes only when made
  // to; a new thread's first task also loads its encoding (a quarter of a second), hence the floor.
  TOKEN_COUNT_TIMEOUT_MS: envMs(1_000, 600_000).default(60_000),
};

const usd = z.union([z.string(), z.number()]).transform((v, ctx) => {
  try {
    return usdToMicros(v);
  } catch (err) {
    ctx.addIssue({ code: 'custom', message: (err as Error).message });
    return z.NEVER;
  }
});

const fileSchema = z.strictObject({
  defaultModel: z.string().includes(':').optional(),
  providers: z
    .array(
      z.strictObject({
        id: providerId,
        kind: z.enum(['openai', 'anthropic', 'mistral', 'openai-compatible']).optional(),
        baseUrl: z.url().optional(),
        apiKey: z.string().optional(),
        models: z.array(z.string().min(1)).default([]),
      }),
    )
    .default([]),
  models: z
    .array(
      z.strictObject({
        id: z.string().regex(/^[^:]+:.+$/, 'must be provider:model'),
        contextWindow: z.number().int().positive().nullable().optional(),
        maxOutputTokens: z.number().int().positive().nullable().optional(),
        /** The model takes images (chat file parts, the gateway's image_url parts). */
        vision: z.boolean().optional(),
        /** USD per million tokens, as decimal strings ("0.15") or numbers. */
        pricing: z.strictObject({ input: usd, output: usd, cachedInput: usd.optional() }).nullable().optional(),
      }),
    )
    .default([]),
});

const aiEnvObject = z.object(aiEnv);
type AiEnv = z.output<typeof aiEnvObject>;

const KNOWN_KINDS: Record<string, ProviderKind> = { openai: 'openai', anthropic: 'anthropic', mistral: 'mistral' };

/** Builds the AI settings; returns the problems (variable: message) instead of throwing, for config.ts to report. */
export function aiSettings(e: AiEnv): { settings: AiSettings; problems: string[] } {
  const problems: string[] = [];
  const byId = new Map<string, ProviderSettings>();
  const add = (p: Omit<ProviderSettings, 'kind' | 'models'> & { kind?: ProviderKind; models?: string[] }) => {
    const prev = byId.get(p.id);
    byId.set(p.id, {
      id: p.id,
      kind: p.kind ?? prev?.kind ?? KNOWN_KINDS[p.id] ?? 'openai-compatible',
      baseUrl: p.baseUrl ?? prev?.baseUrl,
      apiKey: p.apiKey ?? prev?.apiKey,
      models: [...new Set([...(prev?.models ?? []), ...(p.models ?? [])])],
    });
  };

  let file: z.output<typeof fileSchema> | undefined;
  if (e.PARLEY_AI_CONFIG) {
    try {
      const parsed = fileSchema.safeParse(JSON.parse(readFileSync(e.PARLEY_AI_CONFIG, 'utf8')));
      if (parsed.success) file = parsed.data;
      else problems.push(...parsed.error.issues.map((i) => `PARLEY_AI_CONFIG ${i.path.join('.')}: ${i.message}`));
    } catch (err) {
      problems.push(`PARLEY_AI_CONFIG: cannot read ${e.PARLEY_AI_CONFIG}: ${(err as Error).message}`);
    }
  }
  // File first, env after: an env var overrides the same provider's field from the file.
  for (const p of file?.providers ?? []) add(p);
  if (e.OPENAI_API_KEY || e.OPENAI_BASE_URL) add({ id: 'openai', apiKey: e.OPENAI_API_KEY, baseUrl: e.OPENAI_BASE_URL });
  if (e.ANTHROPIC_API_KEY || e.ANTHROPIC_BASE_URL) add({ id: 'anthropic', apiKey: e.ANTHROPIC_API_KEY, baseUrl: e.ANTHROPIC_BASE_URL });
  if (e.MISTRAL_API_KEY || e.MISTRAL_BASE_URL) add({ id: 'mistral', apiKey: e.MISTRAL_API_KEY, baseUrl: e.MISTRAL_BASE_URL });
  if (e.OPENROUTER_API_KEY) add({ id: 'openrouter', apiKey: e.OPENROUTER_API_KEY, baseUrl: e.OPENROUTER_BASE_URL });
  // Ollama's OpenAI-compatible API lives under /v1 of the server's address.
  if (e.OLLAMA_BASE_URL) add({ id: 'ollama', baseUrl: e.OLLAMA_BASE_URL.replace(/\/+$/, '').replace(/(?<!\/v1)$/, '/v1') });
  if (e.OPENAI_COMPATIBLE_ENDPOINTS) {
    try {
      const parsed = compatibleEndpoints.safeParse(JSON.parse(e.OPENAI_COMPATIBLE_ENDPOINTS));
      if (parsed.success) for (const c of parsed.data) add({ id: c.name, kind: 'openai-compatible', baseUrl: c.baseUrl, apiKey: c.apiKey, models: c.models });
      else problems.push(...parsed.error.issues.map((i) => `OPENAI_COMPATIBLE_ENDPOINTS ${i.path.join('.')}: ${i.message}`));
    } catch {
      problems.push('OPENAI_COMPATIBLE_ENDPOINTS: must be a JSON array of {name, baseUrl, apiKey?, models?}');
    }
  }
  for (const p of byId.values()) {
    if (p.kind === 'openai-compatible' && !p.baseUrl) problems.push(`provider "${p.id}": an OpenAI-compatible provider needs a baseUrl`);
  }
  if (e.AI_RETRY_BASE_MS > e.AI_RETRY_MAX_MS) problems.push(`AI_RETRY_BASE_MS (${e.AI_RETRY_BASE_MS}) must not exceed AI_RETRY_MAX_MS (${e.AI_RETRY_MAX_MS}), the cap on every wait`);

  return {
    problems,
    settings: {
      defaultModel: e.DEFAULT_MODEL ?? file?.defaultModel,
      embeddingModel: e.EMBEDDING_MODEL,
      providers: [...byId.values()],
      catalog: file?.models ?? [],
      retries: e.AI_RETRIES,
      retryBaseMs: e.AI_RETRY_BASE_MS,
      retryMaxMs: e.AI_RETRY_MAX_MS,
      firstTokenTimeoutMs: e.AI_FIRST_TOKEN_TIMEOUT_MS,
      streamIdleTimeoutMs: e.AI_STREAM_IDLE_TIMEOUT_MS,
      answerTimeoutMs: e.AI_ANSWER_TIMEOUT_MS,
      breaker: { failureThreshold: e.AI_CIRCUIT_FAILURES, cooldownMs: e.AI_CIRCUIT_COOLDOWN_MS },
      tokenCountThreads: e.TOKEN_COUNT_THREADS,
      tokenCountTimeoutMs: e.TOKEN_COUNT_TIMEOUT_MS,
    },
  };
}
