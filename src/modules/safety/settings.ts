import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { AppError, ConfigError } from '../../errors.ts';
import { envBool, envMs } from '../../platform/config/env.ts';
import { RULE_LIMITS, validateRules, type TextRules } from './rules.ts';

export interface ModerationSettings {
  /** An OpenAI-compatible base URL, `/v1` included (`https://api.openai.com/v1`): POST `{url}/moderations`. */
  url: string;
  apiKey?: string;
  model: string;
  timeoutMs: number;
  /** Provider unreachable: let the text through with a logged warning (true), or refuse it with 503 `moderation_unavailable` (false, the default). */
  failOpen: boolean;
}

export interface SafetySettings {
  /** Unset: no moderation provider; only the rules below and each project's apply. */
  moderation?: ModerationSettings;
  /** The deployment's rules, applied to every project and to turns without one. */
  rules: TextRules & {
    /** Provider categories enforced everywhere, whatever a project chooses. */
    moderationCategories: string[];
  };
  /** The longest one text's search through a rule set's patterns may take, off the event loop (pattern-matcher.ts). */
  patternTimeoutMs: number;
}

export const safetyEnv = {
  MODERATION_URL: z.url().optional(),
  MODERATION_API_KEY: z.string().min(1).optional(),
  MODERATION_MODEL: z.string().min(1).default('omni-moderation-latest'),
  MODERATION_TIMEOUT_MS: envMs(100, 60_000).default(3_000),
  MODERATION_FAIL_OPEN: envBool.default(false),
  SAFETY_RULES: z.string().optional(),
  SAFETY_PATTERN_TIMEOUT_MS: envMs(10, 60_000).default(1_000),
};

const rulesFile = z
  .object({
    blockedTerms: z.array(z.string()).max(RULE_LIMITS.terms).default([]),
    patterns: z.array(z.string()).max(RULE_LIMITS.patterns).default([]),
    maxInputChars: z.number().int().min(1).nullable().default(null),
    moderationCategories: z.array(z.string().min(1).max(100)).max(100).default([]),
  })
  .strict();

type SafetyEnv = { [K in keyof typeof safetyEnv]: z.output<(typeof safetyEnv)[K]> };

/** SAFETY_RULES: inline JSON (it starts with `{`) or the path of a JSON file. */
function readRules(value: string | undefined): SafetySettings['rules'] {
  if (!value) return { blockedTerms: [], patterns: [], maxInputChars: null, moderationCategories: [] };
  let raw: unknown;
  try {
    raw = JSON.parse(value.trimStart().startsWith('{') ? value : readFileSync(value, 'utf8'));
  } catch (err) {
    throw new ConfigError(`SAFETY_RULES: not inline JSON nor a readable JSON file (${(err as Error).message})`);
  }
  const parsed = rulesFile.safeParse(raw);
  if (!parsed.success) throw new ConfigError(`SAFETY_RULES: ${parsed.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ')}`);
  try {
    return { ...validateRules(parsed.data, 'SAFETY_RULES: '), moderationCategories: parsed.data.moderationCategories };
  } catch (err) {
    if (err instanceof AppError) throw new ConfigError(err.message);
    throw err;
  }
}

export function safetySettings(e: SafetyEnv): SafetySettings {
  if (!e.MODERATION_URL && e.MODERATION_API_KEY) throw new ConfigError('MODERATION_API_KEY is set without MODERATION_URL (use https://api.openai.com/v1 for OpenAI)');
  return {
    moderation: e.MODERATION_URL
      ? {
          url: e.MODERATION_URL.replace(/\/+$/, ''),
          apiKey: e.MODERATION_API_KEY,
          model: e.MODERATION_MODEL,
          timeoutMs: e.MODERATION_TIMEOUT_MS,
          failOpen: e.MODERATION_FAIL_OPEN,
        }
      : undefined,
    rules: readRules(e.SAFETY_RULES),
    patternTimeoutMs: e.SAFETY_PATTERN_TIMEOUT_MS,
  };
}
