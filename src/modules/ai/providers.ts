import { createAnthropic } from '@ai-sdk/anthropic';
import { createMistral } from '@ai-sdk/mistral';
import { createOpenAI } from '@ai-sdk/openai';
import { createOpenAICompatible } from '@ai-sdk/openai-compatible';
import type { LanguageModel } from 'ai';
import type { ProviderSettings } from './settings.ts';

/**
 * The configured providers as AI SDK language-model factories, built once.
 * API keys are always passed explicitly (an empty string when none is set), so
 * the SDK never falls back to reading OPENAI_API_KEY & co. from the process
 * environment behind config.ts's back.
 */
export function createProviderRegistry(providers: ProviderSettings[]) {
  const factories = new Map<string, (model: string) => LanguageModel>();
  for (const p of providers) factories.set(p.id, factoryFor(p));
  return {
    has: (provider: string) => factories.has(provider),
    ids: () => [...factories.keys()],
    languageModel(provider: string, model: string): LanguageModel | undefined {
      return factories.get(provider)?.(model);
    },
  };
}

export type ProviderRegistry = ReturnType<typeof createProviderRegistry>;

function factoryFor(p: ProviderSettings): (model: string) => LanguageModel {
  const apiKey = p.apiKey ?? '';
  switch (p.kind) {
    case 'openai': {
      // Chat Completions rather than the SDK's default Responses API: it is what
      // OpenAI-compatible proxies (and the gateway's clients) speak.
      const openai = createOpenAI({ apiKey, baseURL: p.baseUrl });
      return (model) => openai.chat(model);
    }
    case 'anthropic': {
      const anthropic = createAnthropic({ apiKey, baseURL: p.baseUrl });
      return (model) => anthropic(model);
    }
    case 'mistral': {
      const mistral = createMistral({ apiKey, baseURL: p.baseUrl });
      return (model) => mistral(model);
    }
    case 'openai-compatible': {
      const compatible = createOpenAICompatible({ name: p.id, baseURL: p.baseUrl!, apiKey: p.apiKey, includeUsage: true });
      return (model) => compatible.chatModel(model);
    }
  }
}
