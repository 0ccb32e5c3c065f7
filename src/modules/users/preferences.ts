import { z } from 'zod';
import { modelId } from '../projects/contracts.ts';

const isTimeZone = (tz: string) => {
  try {
    new Intl.DateTimeFormat('en', { timeZone: tz });
    return true;
  } catch {
    return false;
  }
};

const isLocale = (l: string) => {
  try {
    return Intl.getCanonicalLocales(l).length === 1;
  } catch {
    return false;
  }
};

const DEFAULT_MODEL_DOC =
  'The model your chat answers use when neither the request, the conversation nor its project names one; null for the server default (`DEFAULT_MODEL`). ' +
  "A model whose provider is not configured makes those answers fail with 400 `unknown_model`, as it would in a request. Not used by the OpenAI-compatible `/v1/chat/completions`, whose requests always name their model.";

/** A user's preferences, every field defaulted so a stored document can be partial. */
export const preferencesSchema = z
  .object({
    theme: z.enum(['system', 'light', 'dark']).default('system'),
    timezone: z.string().max(64).refine(isTimeZone, 'must be an IANA time zone such as Europe/Paris').default('UTC'),
    locale: z.string().max(35).refine(isLocale, 'must be a BCP 47 language tag such as en-GB').default('en'),
    // Read as any string, so whatever is stored stays visible and, if unusable, fails answers loudly (unknown_model) instead of being ignored.
    defaultModel: z.string().max(200).nullable().default(null).describe(DEFAULT_MODEL_DOC),
    notifications: z
      .object({
        email: z.boolean().default(true),
        push: z.boolean().default(true),
        inApp: z.boolean().default(true),
        digest: z.enum(['off', 'daily', 'weekly']).default('off'),
      })
      .strict()
      .default({ email: true, push: true, inApp: true, digest: 'off' }),
    privacy: z
      .object({
        saveHistory: z.boolean().default(true),
        allowTraining: z.boolean().default(false),
        shareUsageAnalytics: z.boolean().default(false),
      })
      .strict()
      .default({ saveHistory: true, allowTraining: false, shareUsageAnalytics: false }),
  })
  .strict()
  .meta({ id: 'Preferences' });

export type Preferences = z.output<typeof preferencesSchema>;

/** A PATCH body: any subset, nested objects merged field by field. */
export const preferencesPatchSchema = z
  .object({
    theme: z.enum(['system', 'light', 'dark']),
    timezone: z.string().max(64).refine(isTimeZone, 'must be an IANA time zone such as Europe/Paris'),
    locale: z.string().max(35).refine(isLocale, 'must be a BCP 47 language tag such as en-GB'),
    // Written as `provider:model`, the form a request's `model` takes.
    defaultModel: modelId.nullable().describe(DEFAULT_MODEL_DOC),
    notifications: z
      .object({ email: z.boolean(), push: z.boolean(), inApp: z.boolean(), digest: z.enum(['off', 'daily', 'weekly']) })
      .strict()
      .partial(),
    privacy: z.object({ saveHistory: z.boolean(), allowTraining: z.boolean(), shareUsageAnalytics: z.boolean() }).strict().partial(),
  })
  .strict()
  .partial();

export type PreferencesPatch = z.infer<typeof preferencesPatchSchema>;

/**
 * Reads a stored document leniently, field by field: a field that no longer
 * validates (say, after a schema change) falls back to its default alone.
 */
export function readPreferences(stored: unknown): Preferences {
  const doc = stored && typeof stored === 'object' ? (stored as Record<string, unknown>) : {};
  const kept: Record<string, unknown> = {};
  for (const [key, field] of Object.entries(preferencesSchema.shape)) {
    if (key in doc && (field as z.ZodType).safeParse(doc[key]).success) kept[key] = doc[key];
  }
  return preferencesSchema.parse(kept);
}

export function mergePreferences(current: Preferences, patch: PreferencesPatch): Preferences {
  return preferencesSchema.parse({
    ...current,
    ...patch,
    notifications: { ...current.notifications, ...patch.notifications },
    privacy: { ...current.privacy, ...patch.privacy },
  });
}
