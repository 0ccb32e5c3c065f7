import { defineModule } from '../module.ts';
import { apiKeysRoutes } from './routes.ts';
import { apiKeys } from './schema.ts';
import { createApiKeys, type ApiKeys } from './service.ts';
import { apiKeysExport } from './export.ts';
import { keyDeleted } from './deleted.ts';
import { apiKeySettings, apiKeysEnv, type ApiKeySettings } from './settings.ts';

export { API_KEY_PREFIX, API_KEY_SCOPES, type ApiKeyScope, type ApiKeys, type VerifiedKey } from './service.ts';
export { apiKeys } from './schema.ts';

declare module '../../platform/bus/events.ts' {
  interface DomainEvents {
    /**
     * `userId` deleted the API key `apiKeyId`. Published once the deletion is committed (queued in its
     * transaction), maybe more than once: handlers let go of what they kept about the key idempotently.
     * Keys that go with their account are not told one by one: each module's part of the account's erasure
     * takes what it kept about them.
     */
    'api_key.deleted': { userId: string; apiKeyId: string };
  }
}

declare module '../module.ts' {
  interface ServiceMap {
    apiKeys: ApiKeys;
  }
  interface ModuleSettings {
    /** How many keys a user may hold. */
    'api-keys': ApiKeySettings;
  }
}

/** API keys: long-lived scoped credentials, only their hash stored, verified through a short cache every instance is told to forget. */
export const apiKeysModule = defineModule({
  name: 'api-keys',
  exports: ({ deps }) => apiKeysExport(deps.db),
  tables: { apiKeys },
  config: { env: apiKeysEnv, read: apiKeySettings },
  needs: ['audit'],
  provides: ['apiKeys'],
  services: ({ deps, config, services }) => ({
    apiKeys: createApiKeys(deps.db, { audit: services.audit, broadcast: deps.broadcast, queue: deps.queue, maxPerUser: config['api-keys'].maxPerUser, logger: deps.logger }),
  }),
  routes: apiKeysRoutes,
  jobs: ({ deps }) => [keyDeleted.job(deps.bus)],
});
