import type { Deps } from './deps.ts';
import { purgeExpiredAuthRows } from './modules/auth/maintenance.ts';
import { createGenerationRepository } from './modules/chat/generation-repository.ts';
import { createIdempotency } from './http/idempotency.ts';
import { createReports } from './modules/usage/reports.ts';

const CLEANUP_INTERVAL_MS = 60 * 60 * 1000;

/**
 * Background work. For now an hourly loop, each module's own: expired
 * sign-in rows, day-old idempotency keys, answers left streaming by an
 * instance that died, and the daily usage rollups of days now complete.
 * (The job queue and its scheduler replace this loop later.)
 */
export function startWorker(deps: Deps) {
  const cleanup = async () => {
    const now = new Date();
    const dayAgo = new Date(now.getTime() - 24 * 3600 * 1000);
    try {
      await purgeExpiredAuthRows(deps.db, now);
      await createIdempotency(deps.db).purge(dayAgo);
      // Well past the longest an answer may run: whoever was generating it is gone.
      const abandoned = await createGenerationRepository(deps.db).failAbandoned(new Date(now.getTime() - (deps.config.chat.maxStreamSeconds + 300) * 1000));
      if (abandoned) deps.logger.warn({ abandoned }, 'marked abandoned generations failed');
      const rolled = await createReports(deps.db).rollup(now);
      if (rolled.length) deps.logger.info({ days: rolled }, 'usage rolled up');
    } catch (err) {
      deps.logger.error({ err }, 'cleanup failed');
    }
  };
  const timer = setInterval(cleanup, CLEANUP_INTERVAL_MS);
  timer.unref();
  void cleanup();
  return {
    async stop() {
      clearInterval(timer);
    },
  };
}
