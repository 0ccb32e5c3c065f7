import { z } from 'zod';
import { envInt } from '../../platform/config/env.ts';

export interface ApiKeySettings {
  /**
   * Keys one user may hold at once: every key is a row in their data export and a budget the gateway may
   * look up on each model call, so this bounds what one account can make either cost.
   */
  maxPerUser: number;
}

/** The env fields config.ts validates for API keys. */
export const apiKeysEnv = {
  API_KEYS_MAX_PER_USER: envInt(1, 1_000_000).default(1_000),
};

const apiKeysEnvObject = z.object(apiKeysEnv);

export function apiKeySettings(e: z.output<typeof apiKeysEnvObject>): ApiKeySettings {
  return { maxPerUser: e.API_KEYS_MAX_PER_USER };
}
