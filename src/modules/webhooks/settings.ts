import { z } from 'zod';
import { envBool, envInt, envMs, envNumber } from '../../platform/config/env.ts';

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
  /** Endpoints one user may register: each is sent every event it wants, so this bounds what one event sets off. */
  maxEndpoints: number;
}

export const webhooksEnv = {
  WEBHOOKS_ALLOW_PRIVATE: envBool.default(false),
  WEBHOOKS_TIMEOUT_MS: envMs(100, 120_000).default(15_000),
  WEBHOOKS_RETRY_SCALE: envNumber(0, 10).default(1),
  WEBHOOKS_DISABLE_AFTER_MS: envMs(0).default(5 * 24 * 3600 * 1000),
  WEBHOOKS_CONCURRENCY: envInt(1, 1000).default(64),
  WEBHOOKS_MAX_ENDPOINTS: envInt(1, 10_000).default(50),
};

const webhooksEnvObject = z.object(webhooksEnv);

export function webhookSettings(e: z.output<typeof webhooksEnvObject>): WebhookSettings {
  return { allowPrivate: e.WEBHOOKS_ALLOW_PRIVATE, timeoutMs: e.WEBHOOKS_TIMEOUT_MS, retryScale: e.WEBHOOKS_RETRY_SCALE, disableAfterMs: e.WEBHOOKS_DISABLE_AFTER_MS, concurrency: e.WEBHOOKS_CONCURRENCY, maxEndpoints: e.WEBHOOKS_MAX_ENDPOINTS };
}
