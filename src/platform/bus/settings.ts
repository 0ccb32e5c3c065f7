import { z } from 'zod';
import { envInt, envMs } from '../config/env.ts';
import type { BusOptions } from './bus.ts';

/** The env fields config.ts validates for the event bus. */
export const busEnv = {
  BUS_MAX_DELIVERIES: envInt(1, 100).default(5),
  BUS_RETRY_DELAY_MS: envMs(1).default(1_000),
  BUS_CLAIM_IDLE_MS: envMs(50).default(30_000),
  BUS_STREAM_MAXLEN: envInt(100, 100_000_000).default(100_000),
};

const busEnvObject = z.object(busEnv);

export function busSettings(e: z.output<typeof busEnvObject>): BusOptions {
  return { maxDeliveries: e.BUS_MAX_DELIVERIES, retryDelayMs: e.BUS_RETRY_DELAY_MS, claimIdleMs: e.BUS_CLAIM_IDLE_MS, maxLen: e.BUS_STREAM_MAXLEN };
}
