import { ValidationError } from '../../errors.ts';
import type { Logger } from '../../platform/observability/logger.ts';
import { createCatalog } from './catalog.ts';
import { createCircuitBreakers } from './circuit-breaker.ts';
import { costMicros } from './cost.ts';
import { streamWithFallback, type Link } from './fallback.ts';
import { createProviderRegistry } from './providers.ts';
import type { AiSettings } from './settings.ts';
import { countPromptTokens, countTextTokens } from './tokens.ts';
import type { Ai, ChatEvent, ChatRequest, ModelInfo, Usage } from './types.ts';

/**
 * The AI module: configured providers, the model catalog with prices, and
 * streaming chat with retries, fallback and per-provider circuit breakers.
 */
export function createAi(settings: AiSettings, opts: { logger?: Logger; random?: () => number } = {}) {
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
    return { provider: entry.provider, model: entry.model, chatModel };
  };

  /** Strips the pricing internals so callers get exactly the ModelInfo shape. */
  const info = (id: string): ModelInfo | undefined => {
    const e = catalog.get(id);
    if (!e) return undefined;
    const { priceMicros: _p, ...rest } = e;
    return rest;
  };

  async function* streamChat(request: ChatRequest): AsyncGenerator<ChatEvent> {
    if (!request.chain.length) throw ValidationError('The model chain is empty', 'unknown_model');
    // Resolve every link first: a typo in the third link should fail now, not after two outages.
    const links = request.chain.map(toLink);
    const run = streamWithFallback({ policy: settings, breakers, random: opts.random }, request, links);
    let step = await run.next();
    for (; !step.done; step = await run.next()) {
      // Operators see every failed attempt, even those a fallback hid from the user.
      if (step.value.type === 'attempt_failed') opts.logger?.warn({ attempt: step.value.attempt }, 'ai attempt failed');
      yield step.value;
    }
    const { link, result } = step.value;
    const id = `${link.provider}:${link.model}`;
    // Without reported usage (some compatible servers), count it ourselves rather than bill zero.
    const usage: Usage = result.usage ?? {
      inputTokens: countPromptTokens(link.model, request.messages),
      outputTokens: countTextTokens(link.model, result.text),
    };
    const price = catalog.get(id)?.priceMicros;
    yield {
      type: 'finish',
      provider: link.provider,
      model: link.model,
      finishReason: result.finishReason,
      usage,
      costMicros: price ? costMicros(price, usage) : null,
      ttftMs: result.ttftMs,
    };
  }

  const ai = {
    models: (): ModelInfo[] => catalog.list().map((m) => info(m.id)!),
    model: info,
    streamChat,
    countTokens: (modelId: string, text: string) => countTextTokens(catalog.get(modelId)?.model ?? modelId, text),
    /** Beyond the contract: a Parley id or a bare model name to a catalog id (the gateway's `model` field). */
    resolve: (name: string): string | undefined => catalog.resolve(name)?.id,
    defaultModel: settings.defaultModel,
    /** For the health/admin views and tests. */
    circuitState: (provider: string) => breakers.state(provider),
  } satisfies Ai & Record<string, unknown>;
  return ai;
}

export type AiService = ReturnType<typeof createAi>;
