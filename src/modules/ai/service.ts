import { ValidationError } from '../../errors.ts';
import type { Logger } from '../../platform/observability/logger.ts';
import { createCatalog } from './catalog.ts';
import { createCircuitBreakers } from './circuit-breaker.ts';
import { costMicros } from './cost.ts';
import { createEmbedder } from './embeddings.ts';
import { streamWithFallback, type Link } from './fallback.ts';
import { createProviderRegistry } from './providers.ts';
import type { AiSettings } from './settings.ts';
import { createTokenCounter } from './token-counter.ts';
import { countTextTokens, IMAGE_TOKENS } from './tokens.ts';
import { hasImages, type ChatMessage, type FailedAttempt } from './types.ts';
import { AppError } from '../../errors.ts';
import type { Ai, CallOutcome, ChatEvent, ChatRequest, MeteredCall, Metering, ModelInfo, Usage } from './types.ts';

/**
 * The AI module: configured providers, the model catalog with prices, and
 * streaming chat with retries, fallback and per-provider circuit breakers.
 */
export function createAi(settings: AiSettings, opts: { logger?: Logger; random?: () => number; metering?: Metering } = {}) {
  const registry = createProviderRegistry(settings.providers);
  const catalog = createCatalog({ providers: settings.providers, entries: settings.catalog, defaultModel: settings.defaultModel });
  const breakers = createCircuitBreakers(settings.breaker);
  // The AI SDK (Anthropic, Mistral) prints provider warnings (an unsupported setting, say) with console.warn; route them to our log.
  if (opts.logger) {
    const logger = opts.logger;
    globalThis.AI_SDK_LOG_WARNINGS = ({ warnings, provider, model }) => logger.debug({ warnings, provider, model }, 'ai sdk warnings');
  }

  const toLink = (id: string): Link => {
    const entry = catalog.get(id);
    const chatModel = entry && registry.chatModel(entry.provider, entry.model);
    if (!entry || !chatModel) throw ValidationError(`Unknown model "${id}": expected provider:model with one of the configured providers (${registry.ids().join(', ') || 'none configured'})`, 'unknown_model');
    return { provider: entry.provider, model: entry.model, chatModel, maxOutputTokens: entry.maxOutputTokens ?? null };
  };

  /** Strips the pricing internals so callers get exactly the ModelInfo shape. */
  const info = (id: string): ModelInfo | undefined => {
    const e = catalog.get(id);
    if (!e) return undefined;
    const { priceMicros: _p, ...rest } = e;
    return rest;
  };

  /**
   * The chain that can take these messages. With images, the first model must
   * see them (400 `model_cannot_see_images` otherwise, before any upstream
   * call) and fallbacks that cannot are left out rather than sent images they
   * would reject.
   */
  function chainFor(chain: string[], messages: ChatMessage[]): string[] {
    if (!hasImages(messages)) return chain;
    const first = chain[0] === undefined ? undefined : catalog.get(chain[0]);
    if (first && !first.vision) {
      throw ValidationError(
        `Model "${first.id}" cannot take images: choose a model that can (GET /v1/ai/models, \`vision\`), or send no images`,
        'model_cannot_see_images',
        { model: first.id },
      );
    }
    // Unknown ids stay, to fail as unknown_model.
    return chain.filter((id) => catalog.get(id)?.vision ?? true);
  }

  async function* streamChat(request: ChatRequest): AsyncGenerator<ChatEvent> {
    if (!request.chain.length) throw ValidationError('The model chain is empty', 'unknown_model');
    // Resolve every link first: a typo in the third link should fail now, not after two outages.
    const links = chainFor(request.chain, request.messages).map(toLink);
    if (!request.meter || !opts.metering) return yield* runChain(request, links);

    // Metered: budgets are checked before any upstream call (here, or by admit() earlier), and the outcome is recorded however the call ends.
    const started = Date.now();
    const call = request.admitted ?? (await opts.metering.begin(request.meter, request, estimate(request, links)));
    const attempts: FailedAttempt[] = [];
    let answering: Link | undefined;
    let text = '';
    let outcome: CallOutcome | undefined;
    const partial = async (status: 'failed' | 'cancelled'): Promise<CallOutcome> => {
      // Output had started: the provider bills what it sent, so count it.
      const sent = request.relay?.text ? text + request.relay.text : text;
      // The call is recorded however it ended: a count that fails (its thread ran out of time) gives way to the estimate's rough one.
      const rough = () => ({ inputTokens: estimate(request, []).tokens, outputTokens: Math.ceil(sent.length / 4) });
      const usage = sent && answering ? await tokens.usage(answering.model, request.messages, sent).catch(rough) : { inputTokens: 0, outputTokens: 0 };
      const price = answering && catalog.get(`${answering.provider}:${answering.model}`)?.priceMicros;
      return { status, provider: answering?.provider ?? null, model: answering?.model ?? null, usage, costMicros: price ? costMicros(price, usage) : null, latencyMs: Date.now() - started, ttftMs: null, attempts };
    };
    const observe = (e: ChatEvent) => {
      if (e.type === 'attempt') answering = links.find((l) => l.provider === e.provider && l.model === e.model);
      else if (e.type === 'attempt_failed') attempts.push(e.attempt);
      else if (e.type === 'delta') text += e.text;
      else if (e.type === 'finish') {
        outcome = { status: 'ok', provider: e.provider, model: e.model, usage: e.usage, costMicros: e.costMicros, latencyMs: Date.now() - started, ttftMs: e.ttftMs, attempts };
      }
    };
    try {
      yield* runChain(request, links, observe);
    } catch (err) {
      if (err instanceof AppError && Array.isArray(err.extra.attempts)) attempts.splice(0, attempts.length, ...(err.extra.attempts as FailedAttempt[]));
      outcome ??= await partial(request.signal?.aborted ? 'cancelled' : 'failed');
      throw err;
    } finally {
      // The consumer may also just stop reading: that is a cancel.
      await call.end(outcome ?? (await partial('cancelled')), request.meter);
    }
  }

  /** What a call is reserved against budgets before it runs: its prompt (about 4 characters a token) and requested output, at the dearest link's price. */
  function estimate(request: ChatRequest, links: Link[]) {
    let chars = 0;
    for (const m of request.messages) {
      chars += m.content.length;
      for (const p of m.parts ?? []) if (p.type === 'image') chars += IMAGE_TOKENS * 4;
    }
    const inputTokens = Math.ceil(chars / 4);
    let micros = 0;
    let outputTokens = 0;
    for (const l of links) {
      // Each link is asked for at most its model's output (fallback.ts fitted).
      const output = Math.min(request.maxTokens ?? 0, l.maxOutputTokens ?? Infinity);
      outputTokens = Math.max(outputTokens, output);
      const price = catalog.get(`${l.provider}:${l.model}`)?.priceMicros;
      if (price) micros = Math.max(micros, costMicros(price, { inputTokens, outputTokens: output }));
    }
    return { micros, tokens: inputTokens + outputTokens };
  }

  /** The chain's events, each seen by `observe` first (yield* rather than a loop: one generator hop less per token). */
  async function* runChain(request: ChatRequest, links: Link[], observe?: (e: ChatEvent) => void): AsyncGenerator<ChatEvent> {
    const watch = (e: ChatEvent) => {
      // Operators see every failed attempt, even those a fallback hid from the user.
      if (e.type === 'attempt_failed') opts.logger?.warn({ attempt: e.attempt }, 'ai attempt failed');
      observe?.(e);
    };
    const { link, result } = yield* streamWithFallback({ policy: settings, breakers, random: opts.random, observe: watch }, request, links);
    const id = `${link.provider}:${link.model}`;
    // Without reported usage (some compatible servers), count it ourselves (on a counting thread when long: a
    // gateway prompt may be tens of megabytes) rather than bill zero.
    const usage: Usage = result.usage ?? (await tokens.usage(link.model, request.messages, result.text, request.signal));
    const price = catalog.get(id)?.priceMicros;
    const finish: ChatEvent = {
      type: 'finish',
      provider: link.provider,
      model: link.model,
      finishReason: result.finishReason,
      usage,
      costMicros: price ? costMicros(price, usage) : null,
      ttftMs: result.ttftMs,
    };
    watch(finish);
    yield finish;
  }

  async function admit(request: ChatRequest): Promise<MeteredCall | undefined> {
    if (!request.meter || !opts.metering) return undefined;
    return opts.metering.begin(request.meter, request, estimate(request, chainFor(request.chain, request.messages).map(toLink)));
  }

  const tokens = createTokenCounter({ threads: settings.tokenCountThreads, timeoutMs: settings.tokenCountTimeoutMs, logger: opts.logger });
  const embedder = createEmbedder({ providers: settings.providers, catalog, policy: settings, defaultModel: settings.embeddingModel, metering: opts.metering, random: opts.random, tokens });

  const ai = {
    models: (): ModelInfo[] => catalog.list().map((m) => info(m.id)!),
    /** Text embeddings (batched, retried, metered as `embedding`): see embeddings.ts. */
    embeddings: embedder,
    model: info,
    streamChat,
    admit,
    chainFor,
    countTokens: (modelId: string, text: string) => countTextTokens(catalog.get(modelId)?.model ?? modelId, text),
    /** Token counts and cuts of large texts, off the event loop (token-counter.ts); `model` is the provider's model name. */
    tokens,
    /** Ends the counting threads. */
    close: () => tokens.close(),
    /** Beyond the contract: a Parley id or a bare model name to a catalog id (the gateway's `model` field). */
    resolve: (name: string): string | undefined => catalog.resolve(name)?.id,
    defaultModel: settings.defaultModel,
    /** For the health/admin views and tests. */
    circuitState: (provider: string) => breakers.state(provider),
  } satisfies Ai & Record<string, unknown>;
  return ai;
}

export type AiService = ReturnType<typeof createAi>;
