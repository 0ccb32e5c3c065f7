import { z } from 'zod';

export interface ConsoleSettings {
  /** Serve the web console at `/` (false: API-only, `/` names the server and its docs). */
  enabled: boolean;
}

export const consoleEnv = {
  CONSOLE_ENABLED: z
    .enum(['true', 'false'])
    .default('true')
    .transform((v) => v === 'true'),
};

const consoleEnvObject = z.object(consoleEnv);

export const consoleSettings = (e: z.output<typeof consoleEnvObject>): ConsoleSettings => ({ enabled: e.CONSOLE_ENABLED });
