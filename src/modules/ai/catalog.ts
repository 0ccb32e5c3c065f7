import { microsToUsd, usdToMicros, type PriceMicros } from './cost.ts';
import type { CatalogEntrySettings, ProviderSettings } from './settings.ts';
import type { ModelInfo } from './types.ts';

/** A model as the AI module knows it: the public info plus exact prices. */
export interface CatalogEntry extends ModelInfo {
  priceMicros: PriceMicros | null;
}

type Builtin = [id: string, contextWindow: number, maxOutput: number, vision: boolean, input: string, output: string, cachedInput?: string];

/**
 * Well-known models, USD per million tokens from the providers' public price
 * pages (late 2025), and whether they take images (the providers' model pages). PARLEY_AI_CONFIG entries override these; a model that is
 * in neither is still usable, with unknown (null) prices and limits.
 */
const BUILTIN: Builtin[] = [
  ['openai:gpt-5', 400_000, 128_000, true, '1.25', '10', '0.125'],
  ['openai:gpt-5-mini', 400_000, 128_000, true, '0.25', '2', '0.025'],
  ['openai:gpt-5-nano', 400_000, 128_000, true, '0.05', '0.4', '0.005'],
  ['openai:gpt-4.1', 1_047_576, 32_768, true, '2', '8', '0.5'],
  ['openai:gpt-4.1-mini', 1_047_576, 32_768, true, '0.4', '1.6', '0.1'],
  ['openai:gpt-4.1-nano', 1_047_576, 32_768, true, '0.1', '0.4', '0.025'],
  ['openai:gpt-4o', 128_000, 16_384, true, '2.5', '10', '1.25'],
  ['openai:gpt-4o-mini', 128_000, 16_384, true, '0.15', '0.6', '0.075'],
  ['openai:o3', 200_000, 100_000, true, '2', '8', '0.5'],
  ['openai:o4-mini', 200_000, 100_000, true, '1.1', '4.4', '0.275'],
  ['anthropic:claude-opus-4-5', 200_000, 64_000, true, '5', '25', '0.5'],
  ['anthropic:claude-opus-4-1', 200_000, 32_000, true, '15', '75', '1.5'],
  ['anthropic:claude-sonnet-4-5', 200_000, 64_000, true, '3', '15', '0.3'],
  ['anthropic:claude-sonnet-4-0', 200_000, 64_000, true, '3', '15', '0.3'],
  ['anthropic:claude-haiku-4-5', 200_000, 64_000, true, '1', '5', '0.1'],
  ['anthropic:claude-3-5-haiku-latest', 200_000, 8_192, true, '0.8', '4', '0.08'],
  ['mistral:mistral-medium-latest', 128_000, 32_000, true, '0.4', '2'],
  ['mistral:mistral-small-latest', 128_000, 32_000, true, '0.1', '0.3'],
  ['mistral:codestral-latest', 256_000, 32_000, false, '0.3', '0.9'],
];

/** Splits `provider:model` at the first colon (model names such as Ollama's `llama3.2:3b` keep theirs). */
export function splitModelId(id: string): { provider: string; model: string } | undefined {
  const at = id.indexOf(':');
  if (at <= 0 || at === id.length - 1) return undefined;
  return { provider: id.slice(0, at), model: id.slice(at + 1) };
}

function entry(id: string, fields: Omit<CatalogEntrySettings, 'id'>): CatalogEntry {
  const { provider, model } = splitModelId(id)!;
  const price = fields.pricing ?? null;
  return {
    id,
    provider,
    model,
    contextWindow: fields.contextWindow ?? null,
    maxOutputTokens: fields.maxOutputTokens ?? null,
    vision: fields.vision ?? false,
    priceMicros: price,
    pricing: price && {
      input: microsToUsd(price.input),
      output: microsToUsd(price.output),
      ...(price.cachedInput !== undefined ? { cachedInput: microsToUsd(price.cachedInput) } : {}),
    },
  };
}

/**
 * The models of the configured providers: the built-in table, the config
 * file's entries and the models listed for compatible endpoints. Lookups
 * of other `provider:model` ids succeed for any configured provider.
 */
export function createCatalog(opts: { providers: ProviderSettings[]; entries: CatalogEntrySettings[]; defaultModel?: string }) {
  const configured = new Set(opts.providers.map((p) => p.id));
  const known = new Map<string, CatalogEntry>();
  for (const [id, contextWindow, maxOutputTokens, vision, input, output, cachedInput] of BUILTIN) {
    const pricing = { input: usdToMicros(input), output: usdToMicros(output), ...(cachedInput ? { cachedInput: usdToMicros(cachedInput) } : {}) };
    known.set(id, entry(id, { contextWindow, maxOutputTokens, vision, pricing }));
  }
  for (const p of opts.providers) for (const model of p.models) if (!known.has(`${p.id}:${model}`)) known.set(`${p.id}:${model}`, entry(`${p.id}:${model}`, {}));
  for (const e of opts.entries) {
    // A file entry replaces the fields it names and keeps the built-in ones it does not.
    const base = known.get(e.id);
    known.set(
      e.id,
      entry(e.id, {
        contextWindow: e.contextWindow !== undefined ? e.contextWindow : base?.contextWindow,
        maxOutputTokens: e.maxOutputTokens !== undefined ? e.maxOutputTokens : base?.maxOutputTokens,
        vision: e.vision ?? base?.vision,
        pricing: e.pricing !== undefined ? e.pricing : base?.priceMicros,
      }),
    );
  }
  if (opts.defaultModel && !known.has(opts.defaultModel) && splitModelId(opts.defaultModel)) known.set(opts.defaultModel, entry(opts.defaultModel, {}));
  const listed = [...known.values()].filter((m) => configured.has(m.provider));

  function get(id: string): CatalogEntry | undefined {
    const parts = splitModelId(id);
    if (!parts || !configured.has(parts.provider)) return undefined;
    return known.get(id) ?? entry(id, {});
  }

  return {
    /** Listed models of configured providers, in table order. */
    list: (): CatalogEntry[] => listed,
    get,
    /**
     * A `provider:model` id of a configured provider, or else a bare model
     * name listed under some configured provider (the first one configured).
     */
    resolve(name: string): CatalogEntry | undefined {
      const direct = get(name);
      if (direct) return direct;
      for (const p of opts.providers) {
        const found = listed.find((m) => m.provider === p.id && m.model === name);
        if (found) return found;
      }
      return undefined;
    },
  };
}

export type Catalog = ReturnType<typeof createCatalog>;
