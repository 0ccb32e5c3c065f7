import { z } from 'zod';
import type { ToolboxSettings } from './toolbox.ts';

export interface ToolsSettings extends ToolboxSettings {
  /** Model calls in one turn when the project does not say (each answer to tool results is one more). */
  defaultMaxSteps: number;
  /** The most a project may set. */
  maxSteps: number;
}

export const toolsEnv = {
  TOOLS_TIMEOUT_MS: z.coerce.number().int().positive().default(30_000),
  TOOLS_MAX_RESULT_CHARS: z.coerce.number().int().positive().default(20_000),
  TOOLS_DEFAULT_MAX_STEPS: z.coerce.number().int().min(1).default(8),
  TOOLS_MAX_STEPS: z.coerce.number().int().min(1).default(25),
};

const toolsEnvObject = z.object(toolsEnv);

export function toolsSettings(e: z.output<typeof toolsEnvObject>): ToolsSettings {
  return {
    timeoutMs: e.TOOLS_TIMEOUT_MS,
    maxResultChars: e.TOOLS_MAX_RESULT_CHARS,
    maxSteps: e.TOOLS_MAX_STEPS,
    defaultMaxSteps: Math.min(e.TOOLS_DEFAULT_MAX_STEPS, e.TOOLS_MAX_STEPS),
  };
}
