import { z } from 'zod';

export interface AiJobSettings {
  /** Generations run at once per worker process. */
  concurrency: number;
  /** An attempt still generating after this long fails (and is retried while attempts remain). */
  timeoutMs: number;
}

/** The env fields config.ts validates for background generations. */
export const aiJobsEnv = {
  AI_JOB_CONCURRENCY: z.coerce.number().int().min(1).max(256).default(4),
  AI_JOB_TIMEOUT_MS: z.coerce.number().int().min(1_000).max(2 ** 31 - 1).default(600_000),
};

const aiJobsEnvObject = z.object(aiJobsEnv);

export function aiJobSettings(e: z.output<typeof aiJobsEnvObject>): AiJobSettings {
  return { concurrency: e.AI_JOB_CONCURRENCY, timeoutMs: e.AI_JOB_TIMEOUT_MS };
}
