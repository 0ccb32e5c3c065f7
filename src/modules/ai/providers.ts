import { createRequire } from 'node:module';
import { createChatCompletionsDriver, type ChatCompletionsDriver } from './chat-completions.ts';
import { aiSdkChatModel, type ChatModel } from './chat-model.ts';
import type { ProviderSettings } from './settings.ts';

const require = createRequire(import.meta.url);
const OPENAI_BASE_URL = 'https://api.openai.com/v1';
const MAX_BUILT_MODELS = 1_000;

/**
 * The configured providers as model factories, built once. OpenAI and every
 * OpenAI-compatible upstream (OpenRouter, Ollama, vLLM…) go through Parley's
 * lean Chat Completions driver; Anthropic and Mistral through the AI SDK.
 * API keys are always passed explicitly (an empty string when none is set),
 * so the SDK never falls back to reading ANTHROPIC_API_KEY & co. from the
 * process environment behind config.ts's back.
 */
export function createProviderRegistry(providers: ProviderSettings[]) {
  const chatCompletions = createChatCompletionsDriver();
  const factories = new Map<string, (model: string) => ChatModel>();
  for (const p of providers) factories.set(p.id, factoryFor(p, chatCompletions));
  // Models are built once and reused; the bound keeps arbitrary model names from growing it without end.
  const built = new Map<string, ChatModel>();
  return {
    has: (provider: string) => factories.has(provider),
    ids: () => [...factories.keys()],
    chatModel(provider: string, model: string): ChatModel | undefined {
      const id = `${provider}:${model}`;
      let chatModel = built.get(id);
      if (!chatModel) {
        chatModel = factories.get(provider)?.(model);
        if (chatModel && built.size < MAX_BUILT_MODELS) built.set(id, chatModel);
      }
      return chatModel;
    },
  };
}

export type ProviderRegistry = ReturnType<typeof createProviderRegistry>;

function factoryFor(p: ProviderSettings, chatCompletions: ChatCompletionsDriver): (model: string) => ChatModel {
  const apiKey = p.apiKey ?? '';
  switch (p.kind) {
    case 'openai': {
      const endpoint = { baseUrl: p.baseUrl ?? OPENAI_BASE_URL, apiKey, openAiRules: true };
      return (model) => chatCompletions.model(endpoint, model);
    }
    case 'openai-compatible': {
      const endpoint = { baseUrl: p.baseUrl!, apiKey: p.apiKey, openAiRules: false };
      return (model) => chatCompletions.model(endpoint, model);
    }
    case 'anthropic': {
      // Loaded only where such a provider is configured, as the AI SDK it runs on.
      const { createAnthropic } = require('@ai-sdk/anthropic') as typeof import('@ai-sdk/anthropic');
      const anthropic = createAnthropic({ apiKey, baseURL: p.baseUrl });
      // Anthropic takes JSON only with a schema (its structured output, or a forced tool).
      return (model) => aiSdkChatModel(anthropic(model), { schemaless: false });
    }
    case 'mistral': {
      const { createMistral } = require('@ai-sdk/mistral') as typeof import('@ai-sdk/mistral');
      const mistral = createMistral({ apiKey, baseURL: p.baseUrl });
      return (model) => aiSdkChatModel(mistral(model), { schemaless: true });
    }
  }
}
