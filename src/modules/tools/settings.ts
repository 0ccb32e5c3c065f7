import { z } from 'zod';
import { ConfigError } from '../../errors.ts';
import { envBool, envInt, envMs } from '../../platform/config/env.ts';
import { addressRanges } from '../../platform/net/public-address.ts';
import type { WebPagesSettings } from './builtin/web-pages.ts';
import type { ToolboxSettings } from './toolbox.ts';

export interface ToolsSettings extends ToolboxSettings {
  /** Model calls in one turn when the project does not say (each answer to tool results is one more). */
  defaultMaxSteps: number;
  /** The most a project may set. */
  maxSteps: number;
  /** What the fetch_url tool may read: its size and time caps, its conversion threads, and whether private addresses are reachable. */
  fetchUrl: WebPagesSettings;
}

export const toolsEnv = {
  TOOLS_TIMEOUT_MS: envMs(1).default(30_000),
  TOOLS_MAX_RESULT_CHARS: envInt(1, 10_000_000).default(20_000),
  // 100: the most a project may ask for (maxToolSteps).
  TOOLS_DEFAULT_MAX_STEPS: envInt(1, 100).default(8),
  TOOLS_MAX_STEPS: envInt(1, 100).default(25),
  FETCH_URL_MAX_BYTES: envInt(1_024, 100_000_000).default(2_000_000),
  FETCH_URL_TIMEOUT_MS: envMs(100, 600_000).default(15_000),
  // Two megabytes of paragraphs take the converter about two seconds.
  FETCH_URL_CONVERT_TIMEOUT_MS: envMs(100, 600_000).default(5_000),
  FETCH_URL_MAX_CONVERSIONS: envInt(1, 64).default(2),
  FETCH_URL_ALLOW_PRIVATE: envBool.default(false),
  FETCH_URL_ALLOWED_RANGES: z.string().default(''),
};

const toolsEnvObject = z.object(toolsEnv);

export function toolsSettings(e: z.output<typeof toolsEnvObject>): ToolsSettings {
  if (e.TOOLS_DEFAULT_MAX_STEPS > e.TOOLS_MAX_STEPS) {
    throw new ConfigError(`Invalid configuration:\n  TOOLS_DEFAULT_MAX_STEPS (${e.TOOLS_DEFAULT_MAX_STEPS}) must not exceed TOOLS_MAX_STEPS (${e.TOOLS_MAX_STEPS}), the most a project may set`);
  }
  let allowedRanges;
  try {
    allowedRanges = addressRanges(e.FETCH_URL_ALLOWED_RANGES);
  } catch (err) {
    throw new ConfigError(`FETCH_URL_ALLOWED_RANGES: ${(err as Error).message}`);
  }
  return {
    timeoutMs: e.TOOLS_TIMEOUT_MS,
    maxResultChars: e.TOOLS_MAX_RESULT_CHARS,
    maxSteps: e.TOOLS_MAX_STEPS,
    defaultMaxSteps: e.TOOLS_DEFAULT_MAX_STEPS,
    fetchUrl: {
      maxBytes: e.FETCH_URL_MAX_BYTES,
      timeoutMs: e.FETCH_URL_TIMEOUT_MS,
      convertTimeoutMs: e.FETCH_URL_CONVERT_TIMEOUT_MS,
      maxConversions: e.FETCH_URL_MAX_CONVERSIONS,
      allowPrivate: e.FETCH_URL_ALLOW_PRIVATE, allowedRanges,
      maxTextChars: e.TOOLS_MAX_RESULT_CHARS,
    },
  };
}
