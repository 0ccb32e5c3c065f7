import { z } from 'zod';
import { modelId } from '../ai/index.ts';

/** Text the model is given in one message, and in all of them; the request body limit applies too. */
const MAX_CONTENT_CHARS = 1_000_000;

export const aiJobBody = z
  .object({
    model: modelId.optional().describe('`provider:model`; otherwise the project\'s model, your defaultModel preference, or the server default'),
    projectId: z.uuid().optional().describe('One of your projects: its model and fallbacks, active system prompt, temperature and maxTokens'),
    messages: z
      .array(z.object({ role: z.enum(['system', 'user', 'assistant']), content: z.string().max(MAX_CONTENT_CHARS) }).strict())
      .min(1)
      .max(1_000)
      .optional(),
    prompt: z.string().min(1).max(MAX_CONTENT_CHARS).optional().describe('A single user message: instead of `messages`'),
    temperature: z.number().min(0).max(2).optional(),
    maxTokens: z.number().int().min(1).max(1_000_000).optional(),
    notify: z
      .boolean()
      .optional()
      .describe('Send an `ai.job.completed` notification when it is done: always (true), never (false), or only when you have no WebSocket open (unset)'),
  })
  // An unknown field is a mistake to tell (a misspelt `maxTokens` would be dropped, the job run without it), as on the message routes.
  .strict()
  .refine((b) => (b.messages === undefined) !== (b.prompt === undefined), { message: 'Send either `messages` or `prompt`, not both', path: ['messages'] })
  .meta({ id: 'AiJobRequest' });

export type AiJobBody = z.output<typeof aiJobBody>;

export const aiJobAccepted = z
  .object({
    id: z.string().describe('The job id: `GET /v1/jobs/{id}`, WebSocket topic `job:{id}`'),
    status: z.enum(['queued', 'active', 'completed', 'dead']),
    statusUrl: z.string(),
  })
  .meta({ id: 'AiJobAccepted' });

/** What a completed job holds as its `result`. */
export interface AiJobResult {
  text: string;
  /** `provider:model` of the link that answered. */
  model: string;
  provider: string;
  finishReason: string;
  usage: { inputTokens: number; outputTokens: number; cachedTokens: number };
  /** Micro-dollars, and the same in USD as a decimal string; null when the model's price is unknown. */
  costMicros: number | null;
  cost: string | null;
}
