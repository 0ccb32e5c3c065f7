import { z } from 'zod';
import { principal } from '../../http/guards.ts';
import type { App } from '../../http/types.ts';
import type { RouteContext } from '../module.ts';
import { openAiErrorHandler } from './gateway-routes.ts';

/** Inputs per request and characters per input: OpenAI's own caps (2,048 inputs; about 8k tokens each). */
const MAX_INPUTS = 2048;
const MAX_INPUT_CHARS = 32_000;

const embeddingsBody = z.object({
  // Zod's own answer for a union that fails is "Invalid input": say what the caps are (a list over 2,048, a number in it).
  input: z
    .union([z.string().min(1).max(MAX_INPUT_CHARS), z.array(z.string().min(1).max(MAX_INPUT_CHARS)).min(1).max(MAX_INPUTS)], {
      error: () => `must be a text of 1 to ${MAX_INPUT_CHARS} characters, or a list of 1 to ${MAX_INPUTS} such texts (token arrays are not accepted)`,
    })
    .describe('Text, or a list of texts (token arrays are not accepted)'),
  model: z.string().min(1).max(200),
  encoding_format: z.enum(['float', 'base64']).default('float'),
  dimensions: z.number().int().min(1).max(8192).optional(),
  user: z.string().max(256).optional(),
});

/** `POST /v1/embeddings` in OpenAI's format, through Parley's providers, keys, limits, budgets and metering. */
export function embeddingsRoutes(app: App, ctx: RouteContext<'ai' | 'limits'>) {
  const { ai, limits } = ctx.services;
  app.post('/embeddings', {
    schema: {
      tags: ['openai-compatible'],
      summary: 'Create embeddings (OpenAI format)',
      description:
        '`model` is a Parley id (`openai:text-embedding-3-small`) or a well-known bare name. Metered as source `embedding` and held to budgets. ' +
        '`encoding_format: base64` returns little-endian float32 vectors, as the official SDKs ask by default.',
      body: embeddingsBody,
    },
    bodyLimit: ctx.config.gatewayBodyLimit,
    onRequest: ctx.guards.user({ scope: 'chat' }),
    errorHandler: openAiErrorHandler,
    handler: async (request, reply) => {
      const body = request.body;
      const caller = principal(request);
      await limits.checkTokens(caller);
      const inputs = typeof body.input === 'string' ? [body.input] : body.input;
      const controller = new AbortController();
      // A client that hangs up should not keep the upstream batches (and their bill) running.
      reply.raw.on('close', () => {
        if (!reply.raw.writableFinished) controller.abort();
      });
      const result = await ai.embeddings.embed(inputs, {
        model: body.model,
        dimensions: body.dimensions,
        meter: { userId: caller.userId, role: caller.role, apiKeyId: caller.apiKeyId ?? null },
        signal: controller.signal,
      });
      return {
        object: 'list' as const,
        model: `${result.provider}:${result.model}`,
        data: result.vectors.map((v, index) => ({
          object: 'embedding' as const,
          index,
          embedding: body.encoding_format === 'base64' ? Buffer.from(new Float32Array(v).buffer).toString('base64') : v,
        })),
        usage: { prompt_tokens: result.inputTokens, total_tokens: result.inputTokens },
      };
    },
  });
}
