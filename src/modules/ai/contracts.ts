import { z } from 'zod';

/** `provider:model`; the model part may hold `/`, `:` or `.` (`openrouter:meta/llama-3`, `ollama:llama3:8b`). */
export const modelId = z
  .string()
  .trim()
  .max(200)
  .regex(/^[a-z0-9][a-z0-9_-]{0,63}:\S+$/i, 'must be "provider:model"')
  .meta({ id: 'ModelId', description: '`provider:model`, e.g. `openai:gpt-4o-mini`' });
