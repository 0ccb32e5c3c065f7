import { defineModule } from '../module.ts';
import { safetyRoutes } from './routes.ts';
import { safetyRules } from './schema.ts';
import { createSafety, type Safety } from './service.ts';
import { safetyEnv, safetySettings, type SafetySettings } from './settings.ts';

export type { Flag, FlagSource, OutputVerdict, ProjectRules, Safety, SafetyScope } from './service.ts';

declare module '../module.ts' {
  interface ServiceMap {
    /** Checks a chat turn's input before the model sees it, and its answer after. */
    safety: Safety;
  }
  interface ModuleSettings {
    /** The moderation provider (MODERATION_*) and the deployment's rules (SAFETY_RULES). */
    safety: SafetySettings;
  }
}

/**
 * Safety: blocked terms, patterns and length caps (the deployment's and each project's), then a
 * moderation provider speaking OpenAI's `/v1/moderations` when one is configured. Flagged input is
 * refused (422 `content_flagged`) before any model call; a flagged answer is reported to the caller
 * to stop. Every flag is audited and raised as an abuse flag; provider calls are metered.
 */
export const safetyModule = defineModule({
  name: 'safety',
  tables: { safetyRules },
  config: { env: safetyEnv, read: safetySettings },
  needs: ['projects', 'audit', 'usage'],
  provides: ['safety'],
  services: ({ deps, config, services }) => ({
    safety: createSafety({
      db: deps.db,
      logger: deps.logger,
      registry: deps.metrics.registry,
      settings: config.safety,
      projects: services.projects,
      audit: services.audit,
      abuse: services.usage.abuse,
      metering: config.usage.enabled ? services.usage.metering : undefined,
    }),
  }),
  routes: safetyRoutes,
  stop: ({ safety }) => safety.close(),
});
