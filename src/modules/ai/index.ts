import { defineModule } from '../module.ts';
import { embeddingsRoutes } from './embeddings-routes.ts';
import { gatewayRoutes } from './gateway-routes.ts';
import { messagesRoutes } from './messages-api.ts';
import { responsesRoutes } from './responses-api.ts';
import { createResponseStore, type ResponseStore } from './responses-store.ts';
import { aiRoutes } from './routes.ts';
import { aiResponses } from './schema.ts';
import { createAi, type AiService } from './service.ts';
import { aiEnv, aiSettings, type AiSettings } from './settings.ts';
import { ConfigError } from '../../errors.ts';
import { aiErasure } from './erasure.ts';

export { createCircuitBreakers, type CircuitBreakers } from './circuit-breaker.ts';
export { buildContext, DEFAULT_CONTEXT_WINDOW } from './context.ts';
export { modelId } from './contracts.ts';
export { formatMicros, usdToMicros } from './cost.ts';
export { callerTexts } from './gateway-call.ts';
export type { AiService } from './service.ts';
export type { Ai, CallOutcome, ChatEvent, ChatMessage, ChatPart, ChatRequest, FailedAttempt, MeterContext, Metering, ModelInfo, ToolCall, ToolDefinition } from './types.ts';
export type { TokenCounter } from './token-counter.ts';
export { countMessageTokens, encodingOf, IMAGE_TOKENS } from './tokens.ts';

declare module '../module.ts' {
  interface ServiceMap {
    /** Providers, the model catalog, fallback chains and retries. */
    ai: AiService;
    /** Responses API responses kept for `previous_response_id` (the gateway's own store). */
    responses: ResponseStore;
  }
  interface ModuleSettings {
    ai: AiSettings;
  }
}

/** AI: every provider behind one interface, the model catalog and prices, and the OpenAI-compatible gateway. */
export const aiModule = defineModule({
  name: 'ai',
  erasure: ({ deps }) => aiErasure(deps.db),
  tables: { aiResponses },
  config: {
    env: aiEnv,
    read(env) {
      const { settings, problems } = aiSettings(env);
      if (problems.length) throw new ConfigError(`Invalid configuration:\n${problems.map((p) => `  ${p}`).join('\n')}`);
      return settings;
    },
  },
  needs: ['usage', 'limits'],
  provides: ['ai', 'responses'],
  // The gateway's input checks; the safety module is built after this one.
  uses: ['safety'],
  services: ({ deps, config, services }) => ({
    ai: createAi(config.ai, { logger: deps.logger, metering: config.usage.enabled ? services.usage.metering : undefined }),
    responses: createResponseStore(deps.db),
  }),
  routes(app, ctx) {
    aiRoutes(app, ctx);
    gatewayRoutes(app, ctx);
    messagesRoutes(app, ctx);
    embeddingsRoutes(app, ctx);
    responsesRoutes(app, ctx);
  },
  stop: ({ ai }) => ai.close(),
  // Stored Responses API responses past their 30 days.
  schedules: ({ services }) => [{ name: 'ai.purge-responses', cron: '53 3 * * *', handler: async () => ({ purged: await services.responses.purge() }) }],
});
