import { z } from 'zod';
import { RULE_LIMITS } from './rules.ts';

export const projectParams = z.object({ id: z.uuid() });

const category = z.string().min(1).max(100);

const moderationPolicy = z
  .object({
    categories: z.array(category).max(100).nullable().default(null).describe('Provider categories that count (null: every one it flags; []: none, unless a threshold says so)'),
    thresholds: z
      .record(category, z.number().min(0).max(1))
      .default({})
      .refine((t) => Object.keys(t).length <= 100, 'at most 100 thresholds')
      .describe('A category counts when its score reaches this (0–1), whatever the provider\'s own verdict'),
  })
  .strict();

export const projectRulesBody = z
  .object({
    blockedTerms: z.array(z.string().max(RULE_LIMITS.termChars)).max(RULE_LIMITS.terms).default([]).describe('Whole words or phrases, matched case-insensitively after NFKC and with invisible characters removed'),
    patterns: z
      .array(z.string().min(1).max(RULE_LIMITS.patternChars))
      .max(RULE_LIMITS.patterns)
      .default([])
      .describe('JavaScript regular expressions, run with the `iu` flags; no backreferences, no repeated group that repeats or alternates inside'),
    maxInputChars: z.number().int().min(1).max(10_000_000).nullable().default(null).describe('Longest message (characters); the deployment\'s, when shorter, still applies'),
    moderation: moderationPolicy.default({ categories: null, thresholds: {} }),
  })
  .strict();

export const projectRulesSchema = z.object({
  projectId: z.uuid(),
  blockedTerms: z.array(z.string()).describe('As stored: normalized, lower case, deduplicated'),
  patterns: z.array(z.string()),
  maxInputChars: z.number().int().nullable(),
  moderation: z.object({ categories: z.array(z.string()).nullable(), thresholds: z.record(z.string(), z.number()) }),
  moderationEnabled: z.boolean().describe('Whether the deployment has a moderation provider (MODERATION_URL)'),
  updatedAt: z.string().nullable().describe('null: never set, the deployment\'s rules alone apply'),
});
