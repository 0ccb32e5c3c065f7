import { setTimeout as sleep } from 'node:timers/promises';
import { AppError, UpstreamFailed, ValidationError } from '../../errors.ts';
import { classifyError, UpstreamStatusError, UpstreamUnreachable, type AttemptError } from './attempt-error.ts';
import type { CatalogEntry } from './catalog.ts';
import { costMicros, usdToMicros, type PriceMicros } from './cost.ts';
import { backoffMs, type FallbackPolicy } from './fallback.ts';
import type { ProviderSettings } from './settings.ts';
import type { TokenCounter } from './token-counter.ts';
import { tokenCount } from './tokens.ts';
import type { FailedAttempt, MeterContext, Metering } from './types.ts';

/** USD per million input tokens of well-known embedding models (late 2025 price pages); the catalog's own entries win. */
const EMBEDDING_PRICES: Record<string, string> = {
  'openai:text-embedding-3-small': '0.02',
  'openai:text-embedding-3-large': '0.13',
  'openai:text-embedding-ada-002': '0.1',
  'mistral:mistral-embed': '0.1',
};

/** Inputs per upstream request, and characters (about a quarter as many tokens): under every provider's per-request caps. */
const BATCH_INPUTS = 96;
const BATCH_CHARS = 200_000;
const REQUEST_TIMEOUT_MS = 60_000;
const ERROR_BODY_LIMIT = 16 * 1024;

export interface EmbedOptions {
  /** `provider:model`; EMBEDDING_MODEL when unset. */
  model?: string;
  /** Fewer dimensions, for models that can shorten their vectors (OpenAI's text-embedding-3). */
  dimensions?: number;
  /** Who it is for: checked against budgets first, metered as source `embedding` after. */
  meter?: Omit<MeterContext, 'source'>;
  signal?: AbortSignal;
}

export interface Embedded {
  /** One vector per input, in order. */
  vectors: number[][];
  provider: string;
  model: string;
  inputTokens: number;
  costMicros: number | null;
}

interface Endpoint {
  url: string;
  apiKey?: string;
}

/** 502: the provider answered, but not with one well-formed vector per input. */
const malformed = (detail: string) => new AppError(502, 'malformed_response', 'Upstream failed', detail);

/** Where a provider answers OpenAI's embeddings protocol (Anthropic has no embeddings API). */
function endpointOf(p: ProviderSettings): Endpoint | undefined {
  const base = p.kind === 'openai' ? (p.baseUrl ?? 'https://api.openai.com/v1') : p.kind === 'mistral' ? (p.baseUrl ?? 'https://api.mistral.ai/v1') : p.kind === 'openai-compatible' ? p.baseUrl : undefined;
  return base ? { url: `${base.replace(/\/+$/, '')}/embeddings`, apiKey: p.apiKey } : undefined;
}

/** Inputs in consecutive batches that each stay under the per-request caps. */
function batches(inputs: string[]): string[][] {
  const out: string[][] = [];
  let current: string[] = [];
  let chars = 0;
  for (const input of inputs) {
    if (current.length && (current.length >= BATCH_INPUTS || chars + input.length > BATCH_CHARS)) {
      out.push(current);
      current = [];
      chars = 0;
    }
    current.push(input);
    chars += input.length;
  }
  if (current.length) out.push(current);
  return out;
}

/**
 * Text embeddings through any configured provider that speaks OpenAI's
 * embeddings protocol (OpenAI, Mistral, Ollama, vLLM, OpenRouter and other
 * compatible servers): batched, retried on 429/5xx with the chat calls'
 * backoff, held to budgets and metered like every model call.
 */
export function createEmbedder(deps: {
  providers: ProviderSettings[];
  catalog: { get(id: string): CatalogEntry | undefined; resolve(name: string): CatalogEntry | undefined };
  policy: Pick<FallbackPolicy, 'retries' | 'retryBaseMs' | 'retryMaxMs'>;
  defaultModel?: string;
  metering?: Metering;
  random?: () => number;
  tokens: Pick<TokenCounter, 'count'>;
}) {
  const endpoints = new Map(deps.providers.flatMap((p) => {
    const e = endpointOf(p);
    return e ? [[p.id, e] as const] : [];
  }));

  const priceOf = (id: string): PriceMicros | null => {
    const listed = deps.catalog.get(id)?.priceMicros;
    if (listed) return listed;
    const usd = EMBEDDING_PRICES[id];
    return usd ? { input: usdToMicros(usd), output: 0 } : null;
  };

  /** `provider:model`, a bare name of a well-known embedding model, or the default. */
  function resolve(name: string | undefined): { id: string; provider: string; model: string; endpoint: Endpoint } {
    const wanted = name ?? deps.defaultModel;
    if (!wanted) throw ValidationError('No embedding model is configured (EMBEDDING_MODEL) and the request names none', 'embeddings_not_configured');
    const bare = !wanted.includes(':') ? Object.keys(EMBEDDING_PRICES).find((id) => id.endsWith(`:${wanted}`) && endpoints.has(id.split(':')[0]!)) : undefined;
    const id = bare ?? deps.catalog.resolve(wanted)?.id ?? wanted;
    const at = id.indexOf(':');
    const provider = id.slice(0, at);
    const model = id.slice(at + 1);
    const endpoint = at > 0 ? endpoints.get(provider) : undefined;
    if (!endpoint || !model) {
      const known = deps.providers.some((p) => p.id === provider);
      throw ValidationError(known ? `Provider "${provider}" has no embeddings API` : `Unknown embedding model "${wanted}": expected provider:model with a configured provider that has embeddings (${[...endpoints.keys()].join(', ') || 'none'})`, 'unknown_model');
    }
    return { id, provider, model, endpoint };
  }

  async function request(endpoint: Endpoint, body: Record<string, unknown>, signal?: AbortSignal): Promise<{ vectors: number[][]; tokens?: number }> {
    const headers: Record<string, string> = { 'content-type': 'application/json' };
    if (endpoint.apiKey) headers.authorization = `Bearer ${endpoint.apiKey}`;
    const timeout = AbortSignal.timeout(REQUEST_TIMEOUT_MS);
    let res: Response;
    try {
      res = await fetch(endpoint.url, { method: 'POST', headers, body: JSON.stringify(body), signal: signal ? AbortSignal.any([signal, timeout]) : timeout });
    } catch (err) {
      if (signal?.aborted) throw err;
      throw new UpstreamUnreachable((err as { cause?: { code?: string } }).cause?.code ?? (timeout.aborted ? 'ETIMEDOUT' : 'ECONNREFUSED'));
    }
    if (!res.ok) {
      const text = (await res.text().catch(() => '')).slice(0, ERROR_BODY_LIMIT);
      let message = text.slice(0, 300);
      try {
        message = (JSON.parse(text) as { error?: { message?: string } }).error?.message?.slice(0, 300) ?? message;
      } catch {}
      throw new UpstreamStatusError(res.status, Object.fromEntries(res.headers), message);
    }
    const json = (await res.json()) as { data?: Array<{ index?: number; embedding?: unknown }>; usage?: { prompt_tokens?: unknown } };
    const inputs = (body.input as string[]).length;
    const data = json.data;
    if (!Array.isArray(data) || data.length !== inputs) throw malformed(`The provider returned ${Array.isArray(data) ? data.length : 'no'} embeddings for ${inputs} inputs`);
    const vectors = new Array<number[]>(inputs);
    for (const [i, d] of data.entries()) {
      const at = typeof d.index === 'number' ? d.index : i;
      if (!Array.isArray(d.embedding) || !d.embedding.length || !d.embedding.every((x) => typeof x === 'number' && Number.isFinite(x)) || !Number.isInteger(at) || at < 0 || at >= inputs) {
        throw malformed('The provider returned an embedding that is not a non-empty list of numbers');
      }
      // Two answers for one index leave another input without a vector.
      if (vectors[at]) throw malformed(`The provider returned two embeddings for input ${at}`);
      vectors[at] = d.embedding as number[];
    }
    // A count that is not one (negative, a string, a fraction) is counted here instead: it would be billed, and settled against budgets, as it is.
    return { vectors, tokens: tokenCount(json.usage?.prompt_tokens) };
  }

  /** One batch, retried on what is worth retrying. */
  async function embedBatch(target: ReturnType<typeof resolve>, input: string[], opts: EmbedOptions, attempts: FailedAttempt[]) {
    const body: Record<string, unknown> = { model: target.model, input, encoding_format: 'float' };
    if (opts.dimensions) body.dimensions = opts.dimensions;
    for (let retry = 0; ; retry++) {
      try {
        return await request(target.endpoint, body, opts.signal);
      } catch (err) {
        if (err instanceof AppError || opts.signal?.aborted) throw err;
        const error: AttemptError = classifyError(err, false);
        attempts.push({ provider: target.provider, model: target.model, error: error.message, code: error.code, ...(error.status ? { status: error.status } : {}), at: new Date().toISOString() });
        const wait = error.retryable && retry < deps.policy.retries ? backoffMs(deps.policy, retry, error.retryAfterMs, deps.random ?? Math.random) : undefined;
        if (wait === undefined) {
          // The provider refusing the input (too long, bad dimensions) is the caller's to fix.
          if (error.status && error.status >= 400 && error.status < 500 && ![401, 403, 404, 408, 409, 429].includes(error.status)) throw ValidationError(`The provider refused the input: ${error.message}`, 'upstream_rejected');
          throw UpstreamFailed(`Embedding failed: ${error.message}`, error.code, { attempts });
        }
        await sleep(wait, undefined, { signal: opts.signal });
      }
    }
  }

  async function embed(inputs: string[], opts: EmbedOptions = {}): Promise<Embedded> {
    const target = resolve(opts.model);
    if (!inputs.length) return { vectors: [], provider: target.provider, model: target.model, inputTokens: 0, costMicros: 0 };
    const price = priceOf(target.id);
    // Up to 2,048 inputs of 32,000 characters: counted as one task, on a thread once they add up to more than a few pages.
    const counted = () => deps.tokens.count(target.model, inputs, opts.signal);
    const meter = opts.meter && deps.metering ? { ...opts.meter, source: 'embedding' as const } : undefined;
    const estimateTokens = meter ? await counted() : 0;
    const call = meter ? await deps.metering!.begin(meter, { chain: [target.id], messages: [] }, { micros: price ? costMicros(price, { inputTokens: estimateTokens, outputTokens: 0 }) : 0, tokens: estimateTokens }) : undefined;
    const started = Date.now();
    const attempts: FailedAttempt[] = [];
    const vectors: number[][] = [];
    // What the provider has answered (and billed) so far: its counts, and the inputs of batches it did not count.
    let reported = 0;
    const uncounted: string[] = [];
    /** The tokens of the batches answered so far; counted here where the provider gave no count, rather than billed as zero. */
    const answered = async (signal?: AbortSignal) => {
      if (!uncounted.length) return reported;
      // The estimate is that count already when no batch was counted (the same inputs and model): not counted twice.
      if (meter && uncounted.length === inputs.length) return estimateTokens;
      return reported + (await deps.tokens.count(target.model, uncounted, signal));
    };
    const costOf = (inputTokens: number) => (price ? costMicros(price, { inputTokens, outputTokens: 0 }) : null);
    try {
      for (const batch of batches(inputs)) {
        const r = await embedBatch(target, batch, opts, attempts);
        vectors.push(...r.vectors);
        if (r.tokens === undefined) uncounted.push(...batch);
        else reported += r.tokens;
      }
      // Checked before the call is ended, so that an answer refused here still ends it (recorded, its budget reservation settled).
      const dims = vectors[0]!.length;
      if (vectors.some((v) => v.length !== dims)) throw malformed('The provider returned vectors of different lengths');
      // A model that cannot shorten its vectors may ignore `dimensions` (compatible servers do): the caller asked for a size it did not get.
      if (opts.dimensions && dims !== opts.dimensions) {
        throw ValidationError(`${target.id} answered with ${dims}-dimensional vectors, not the ${opts.dimensions} asked: this model does not support \`dimensions\``, 'dimensions_unsupported', { param: 'dimensions' });
      }
    } catch (err) {
      // The batches answered before the failure were made, and billed by the provider: they are recorded, and settled against budgets.
      const inputTokens = await answered().catch(() => reported);
      await call?.end({ status: opts.signal?.aborted ? 'cancelled' : 'failed', provider: target.provider, model: target.model, usage: { inputTokens, outputTokens: 0 }, costMicros: costOf(inputTokens) ?? 0, latencyMs: Date.now() - started, ttftMs: null, attempts }, meter!);
      throw err;
    }
    const inputTokens = await answered(opts.signal);
    const cost = costOf(inputTokens);
    await call?.end({ status: 'ok', provider: target.provider, model: target.model, usage: { inputTokens, outputTokens: 0 }, costMicros: cost, latencyMs: Date.now() - started, ttftMs: null, attempts }, meter!);
    return { vectors, provider: target.provider, model: target.model, inputTokens, costMicros: cost };
  }

  return {
    embed,
    /** The configured embedding model (`provider:model`), or undefined: search then runs on full text alone. */
    defaultModel: deps.defaultModel,
    /** Throws 400 unless `name` (or the default) is an embedding model Parley can call. */
    check: (name?: string) => resolve(name).id,
  };
}

export type Embedder = ReturnType<typeof createEmbedder>;
