import type { Deps } from '../../deps.ts';
import type { MeterContext } from '../ai/index.ts';
import { createAbuseCheck } from './abuse.ts';
import type { ApiKeys } from '../api-keys/index.ts';
import { createBudgetAlerts } from './budget-alerts.ts';
import { createBudgets, type BudgetSubjects } from './budgets.ts';
import { memoryLedger } from './ledger.ts';
import { createMetering } from './metering.ts';
import { createUsageRecorder } from './recorder.ts';
import { redisLedger } from './redis-ledger.ts';
import { createReports } from './reports.ts';

/** Metering, budgets and usage reports over the deps the config chose (Redis counters across instances, memory on one). */
export function createUsage(
  deps: Pick<Deps, 'config' | 'db' | 'redis' | 'broadcast' | 'metrics' | 'logger' | 'bus'>,
  opts: {
    subjects: BudgetSubjects;
    apiKeys: Pick<ApiKeys, 'createdSince'>;
    onTokens?: (meter: MeterContext, tokens: number) => void;
    ban?: (userId: string, seconds: number, reason: string) => Promise<unknown>;
  },
) {
  const { config, db, logger } = deps;
  const recorder = createUsageRecorder(db, { flushIntervalMs: config.usage.flushIntervalMs, maxBatch: config.usage.flushBatch, maxPending: config.usage.maxPending, logger });
  const ledger = deps.redis ? redisLedger(deps.redis, config.redisPrefix, { ...config.usage.budgets, logger }) : memoryLedger();
  const budgets = createBudgets({ db, ledger, recorder, broadcast: deps.broadcast, subjects: opts.subjects, logger });
  const alerts = createBudgetAlerts({ db, ledger, bus: deps.bus, logger, shared: Boolean(deps.redis) });
  const metering = createMetering({ budgets, ledger, alerts, recorder, registry: deps.metrics.registry, logger, onTokens: opts.onTokens });
  const reports = createReports(db);
  const abuse = createAbuseCheck({ db, apiKeys: opts.apiKeys, settings: config.usage.abuse, ban: opts.ban });
  return {
    abuse,
    recorder,
    budgets,
    /** 80 % and 100 % of a budget reached: told once per period (`budget.threshold`). */
    alerts,
    metering,
    reports,
    /** Writes every pending event and budget counter: part of a graceful shutdown. */
    close: async () => {
      await alerts.close();
      await Promise.all([recorder.close(), ledger.close()]);
    },
  };
}

export type Usage = ReturnType<typeof createUsage>;
