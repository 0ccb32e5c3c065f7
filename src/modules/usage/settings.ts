import { z } from 'zod';

/** Metering's environment variables, spread into config.ts's schema. */
export const usageEnv = {
  USAGE_FLUSH_INTERVAL_MS: z.coerce.number().int().min(10).max(60_000).default(1_000),
  USAGE_FLUSH_BATCH: z.coerce.number().int().min(1).max(10_000).default(500),
  USAGE_MAX_PENDING: z.coerce.number().int().min(1_000).default(1_000_000),
};

export interface UsageSettings {
  /** Usage events are written at least this often: the most a crash can lose. */
  flushIntervalMs: number;
  flushBatch: number;
  /** Events kept in memory while the database is unreachable before the oldest are dropped. */
  maxPending: number;
}

export const usageSettings = (e: { USAGE_FLUSH_INTERVAL_MS: number; USAGE_FLUSH_BATCH: number; USAGE_MAX_PENDING: number }): UsageSettings => ({
  flushIntervalMs: e.USAGE_FLUSH_INTERVAL_MS,
  flushBatch: e.USAGE_FLUSH_BATCH,
  maxPending: e.USAGE_MAX_PENDING,
});
