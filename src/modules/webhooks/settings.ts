import { z } from 'zod';
import { envBool } from '../../platform/config/env.ts';

export interface WebhookSettings {
  /** Deliver to private, loopback and link-local addresses (a closed network, or tests). */
  allowPrivate: boolean;
  /** An attempt without a complete answer after this long fails. */
  timeoutMs: number;
  /** Multiplies every wait of the retry schedule (tests shrink it). */
  retryScale: number;
  /** An endpoint with only failures for this long is disabled. */
  disableAfterMs: number;
  /** Attempts one worker process makes at once. */
  concurrency: number;
}

export const webhooksEnv = {
  WEBHOOKS_ALLOW_PRIVATE: envBool.default(false),
  WEBHOOKS_TIMEOUT_MS: z.coerce.number().int().min(100).max(120_000).default(15_000),
  WEBHOOKS_RETRY_SCALE: z.coerce.number().min(0).max(10).default(1),
  WEBHOOKS_DISABLE_AFTER_MS: z.coerce.number().int().min(0).default(5 * 24 * 3600 * 1000),
  WEBHOOKS_CONCURRENCY: z.coerce.number().int().min(1).max(1000).default(64),
};

const webhooksEnvObject = z.object(webhooksEnv);

export function webhookSettings(e: z.output<typeof webhooksEnvObject>): WebhookSettings {
  return { allowPrivate: e.WEBHOOKS_ALLOW_PRIVATE, timeoutMs: e.WEBHOOKS_TIMEOUT_MS, retryScale: e.WEBHOOKS_RETRY_SCALE, disableAfterMs: e.WEBHOOKS_DISABLE_AFTER_MS, concurrency: e.WEBHOOKS_CONCURRENCY };
}
