import type { Deps } from './deps.ts';
import { purgeExpiredAuthRows } from './modules/auth/maintenance.ts';
import { createGenerationRepository } from './modules/chat/generation-repository.ts';
import { createIdempotency } from './http/idempotency.ts';
import type { Services } from './services.ts';

const CLEANUP_INTERVAL_MS = 60 * 60 * 1000;

/**
 * Background work. For now an hourly loop, each module's own: expired
 * sign-in rows, day-old idempotency keys, answers left streaming by an
 * instance that died, the daily usage rollups of days now complete, and the
 * abuse check.
 * (The job queue and its scheduler replace this loop later.)
 */
export function startWorker(deps: Deps, services: Services) {
  const cleanup = async () => {
    const now = new Date();
    const dayAgo = new Date(now.getTime() - 24 * 3600 * 1000);
    try {
      await purgeExpiredAuthRows(deps.db, now);
      await createIdempotency(deps.db).purge(dayAgo);
      // Well past the longest an answer may run: whoever was generating it is gone.
      const abandoned = await createGenerationRepository(deps.db).failAbandoned(new Date(now.getTime() - (deps.config.chat.maxStreamSeconds + 300) * 1000));
      if (abandoned) deps.logger.warn({ abandoned }, 'marked abandoned generations failed');
      const rolled = await services.usage.reports.rollup(now);
      if (rolled.length) deps.logger.info({ days: rolled }, 'usage rolled up');
      const flags = await services.usage.abuse.run(now);
      if (flags.length) deps.logger.warn({ flags: flags.map((f) => ({ userId: f.userId, kind: f.kind })) }, 'abuse check flagged accounts');
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
