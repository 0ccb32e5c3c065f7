import { z } from 'zod';
import { envBool, envInt, envMs, envNumber, envSeconds } from '../../platform/config/env.ts';
import type { AbuseSettings } from './abuse.ts';

/** Metering's environment variables, spread into config.ts's schema. */
export const usageEnv = {
  METERING_ENABLED: envBool.default(true),
  USAGE_FLUSH_INTERVAL_MS: envMs(10, 60_000).default(1_000),
  USAGE_FLUSH_BATCH: envInt(1, 10_000).default(500),
  USAGE_MAX_PENDING: envInt(1_000, 100_000_000).default(1_000_000),
  BUDGET_SYNC_INTERVAL_MS: envMs(50, 10_000).default(500),
  BUDGET_LEASE_SHARE: envNumber(0, 0.5).default(0.05),
  ABUSE_SPIKE_FACTOR: envNumber(1, 10_000).default(10),
  ABUSE_SPIKE_MIN_TOKENS: envInt(1, 1e12).default(200_000),
  ABUSE_REPEATED_PROMPTS: envInt(2, 1e9).default(100),
  ABUSE_KEY_BURST: envInt(2, 1e9).default(10),
  ABUSE_AUTO_THROTTLE_SECONDS: envSeconds(0).default(0),
};

export interface UsageSettings {
  /** Off: model calls are neither metered nor checked against budgets (for deployments that bill elsewhere, and bench:usage's baseline). */
  enabled: boolean;
  /** Usage events are written at least this often: the most a crash can lose. */
  flushIntervalMs: number;
  flushBatch: number;
  /** Events kept in memory while the database is unreachable before the oldest are dropped. */
  maxPending: number;
  /** Budget leases (Redis only; see redis-ledger.ts). */
  budgets: {
    /** Spend is written back to the counters, and leases renewed or given back, this often. */
    syncIntervalMs: number;
    /** The most room one process leases beyond its calls in flight, as a share of the limit (0: none). */
    leaseShare: number;
  };
  abuse: AbuseSettings;
}

type UsageEnv = { [K in keyof typeof usageEnv]: z.output<(typeof usageEnv)[K]> };

export const usageSettings = (e: UsageEnv): UsageSettings => ({
  enabled: e.METERING_ENABLED,
  flushIntervalMs: e.USAGE_FLUSH_INTERVAL_MS,
  flushBatch: e.USAGE_FLUSH_BATCH,
  maxPending: e.USAGE_MAX_PENDING,
  budgets: { syncIntervalMs: e.BUDGET_SYNC_INTERVAL_MS, leaseShare: e.BUDGET_LEASE_SHARE },
  abuse: {
    spikeFactor: e.ABUSE_SPIKE_FACTOR,
    spikeMinTokens: e.ABUSE_SPIKE_MIN_TOKENS,
    repeatedPrompts: e.ABUSE_REPEATED_PROMPTS,
    keyBurst: e.ABUSE_KEY_BURST,
    autoThrottleSeconds: e.ABUSE_AUTO_THROTTLE_SECONDS,
  },
});
