import { z } from 'zod';
import { envInt, envMs } from '../../platform/config/env.ts';

export interface AiJobSettings {
  /** Generations run at once per worker process. */
  concurrency: number;
  /** An attempt still generating after this long fails (and is retried while attempts remain). */
  timeoutMs: number;
}

/** The env fields config.ts validates for background generations. */
export const aiJobsEnv = {
  AI_JOB_CONCURRENCY: envInt(1, 256).default(4),
  AI_JOB_TIMEOUT_MS: envMs(1_000).default(600_000),
};

const aiJobsEnvObject = z.object(aiJobsEnv);

export function aiJobSettings(e: z.output<typeof aiJobsEnvObject>): AiJobSettings {
  return { concurrency: e.AI_JOB_CONCURRENCY, timeoutMs: e.AI_JOB_TIMEOUT_MS };
}
