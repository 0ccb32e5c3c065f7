import { defineModule } from '../module.ts';
import { apiKeysRoutes } from './routes.ts';
import { apiKeys } from './schema.ts';
import { createApiKeys, type ApiKeys } from './service.ts';
import { apiKeysExport } from './export.ts';

export { API_KEY_PREFIX, API_KEY_SCOPES, type ApiKeyScope, type ApiKeys, type VerifiedKey } from './service.ts';
export { apiKeys } from './schema.ts';

declare module '../module.ts' {
  interface ServiceMap {
    apiKeys: ApiKeys;
  }
}

/** API keys: long-lived scoped credentials, only their hash stored, verified through a short cache every instance is told to forget. */
export const apiKeysModule = defineModule({
  name: 'api-keys',
  exports: ({ deps }) => apiKeysExport(deps.db),
  tables: { apiKeys },
  needs: ['audit'],
  provides: ['apiKeys'],
  services: ({ deps, services }) => ({ apiKeys: createApiKeys(deps.db, { audit: services.audit, broadcast: deps.broadcast, logger: deps.logger }) }),
  routes: apiKeysRoutes,
});
