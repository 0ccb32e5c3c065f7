import { z } from 'zod';
import { problemSchema } from '../../http/problem.ts';
import type { App } from '../../http/types.ts';
import type { RouteContext } from '../module.ts';

const modelInfoSchema = z
  .object({
    id: z.string().meta({ description: '`provider:model`' }),
    provider: z.string(),
    model: z.string(),
    contextWindow: z.number().int().nullable(),
    maxOutputTokens: z.number().int().nullable(),
    vision: z.boolean().meta({ description: 'Takes images as input (built-in table or PARLEY_AI_CONFIG `vision`); false when unknown' }),
    pricing: z
      .object({ input: z.number(), output: z.number(), cachedInput: z.number().optional() })
      .nullable()
      .meta({ description: 'USD per million tokens; null when unknown (never shown as zero)' }),
  })
  .meta({ id: 'ModelInfo' });

/** Parley's own view of the AI module: the catalog with limits and prices. */
export function aiRoutes(app: App, { services, guards }: RouteContext<'ai'>) {
  app.get('/ai/models', {
    schema: {
      tags: ['ai'],
      summary: 'Models of the configured providers, with context windows and prices',
      response: { 200: z.object({ data: z.array(modelInfoSchema), defaultModel: z.string().nullable() }), 401: problemSchema, 403: problemSchema },
    },
    onRequest: guards.user({ scope: 'models:read' }),
    handler: async () => ({ data: services.ai.models(), defaultModel: services.ai.defaultModel ?? null }),
  });
}
