import { z } from 'zod';
import { envBool } from '../../platform/config/env.ts';

export interface ConsoleSettings {
  /** Serve the web console at `/` (false: API-only, `/` names the server and its docs). */
  enabled: boolean;
}

export const consoleEnv = {
  CONSOLE_ENABLED: envBool.default(true),
};

const consoleEnvObject = z.object(consoleEnv);

export const consoleSettings = (e: z.output<typeof consoleEnvObject>): ConsoleSettings => ({ enabled: e.CONSOLE_ENABLED });
