import { z } from 'zod';
import { modelId } from '../ai/index.ts';

/** A name from the IANA database (links such as US/Pacific too): Intl also takes a bare offset (`+05:30`), which is not one. */
const isTimeZone = (tz: string) => {
  if (!/^[A-Za-z]/.test(tz)) return false;
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

// Each field says what Parley does with it today: a preference the server does not use yet says so.
const theme = z.enum(['system', 'light', 'dark']).describe('How clients draw their interface. Stored for clients; the server does not use it.');
const timezone = z
  .string()
  .max(64)
  .refine(isTimeZone, 'must be an IANA time zone such as Europe/Paris')
  .describe('IANA time zone. Day and month budget periods (`GET /v1/usage/limits`) start at midnight here, up to a minute after a change.');
const locale = z
  .string()
  .max(35)
  .refine(isLocale, 'must be a BCP 47 language tag such as en-GB')
  .describe("BCP 47 language tag, for clients to format and translate with. Parley's own emails are in English for now: a later release sends them in this language.");
const DEFAULT_MODEL_DOC =
  'The model your chat answers use when neither the request, the conversation nor its project names one; null for the server default (`DEFAULT_MODEL`). ' +
  "A model whose provider is not configured makes those answers fail with 400 `unknown_model`, as it would in a request. Not used by the OpenAI-compatible `/v1/chat/completions`, whose requests always name their model.";
const HH_MM = /^([01]\d|2[0-3]):[0-5]\d$/;
export const WEEKDAYS = ['monday', 'tuesday', 'wednesday', 'thursday', 'friday', 'saturday', 'sunday'] as const;
const notifications = {
  email: z
    .boolean()
    .describe('Notifications by email: off stops them for every category, whatever `/v1/notifications/preferences` says. Account emails (address confirmation, password reset and change) are always sent.'),
  push: z.boolean().describe('Web push notifications to your subscribed browsers (`/v1/notifications/push/subscriptions`): off stops them for every category.'),
  sms: z.boolean().describe('Text messages to your verified phone number: off stops them for every category.'),
  slack: z.boolean().describe('Slack messages to your connected Slack destination: off stops them for every category.'),
  inApp: z.boolean().describe('In-app notifications (`/v1/notifications`, the `notifications` topic): off stops them for every category, whatever `/v1/notifications/preferences` says.'),
  digest: z
    .enum(['off', 'daily', 'weekly'])
    .describe('daily or weekly: notification emails that are not critical wait and go out together in one digest email at `digestTime` (and on `digestDay` for weekly), in your `timezone`.'),
  digestTime: z.string().regex(HH_MM, 'a local time as HH:MM').describe('When the digest goes out, local time (HH:MM).'),
  digestDay: z.enum(WEEKDAYS).describe('The day a weekly digest goes out.'),
  quietHours: z
    .object({ start: z.string().regex(HH_MM, 'a local time as HH:MM'), end: z.string().regex(HH_MM, 'a local time as HH:MM') })
    .strict()
    .nullable()
    .describe('From `start` to `end` (local time, in your `timezone`; may span midnight) email, push, SMS and Slack notifications that are not critical wait until it ends. In-app ones are stored at once. null: none.'),
};
const privacy = {
  saveHistory: z.boolean().describe('Not used yet: conversations are stored whatever this says; a later release keeps no history when it is off.'),
  allowTraining: z
    .boolean()
    .describe("Recorded only: Parley trains no models and hands conversations to no one for training, so nothing reads it yet; a later release uses it. What a model provider may do with prompts is set by the operator's agreement with it."),
  shareUsageAnalytics: z
    .boolean()
    .describe("Recorded only: Parley sends analytics nowhere, so nothing reads it yet; a later release uses it. Usage is metered for quotas, budgets and the operator's reports whatever this says."),
};

const NOTIFICATION_DEFAULTS = { email: true, push: true, sms: true, slack: true, inApp: true, digest: 'off', digestTime: '09:00', digestDay: 'monday', quietHours: null } as const;
const PRIVACY_DEFAULTS = { saveHistory: true, allowTraining: false, shareUsageAnalytics: false };

/** A user's preferences, every field defaulted so a stored document can be partial. */
export const preferencesSchema = z
  .object({
    theme: theme.default('system'),
    timezone: timezone.default('UTC'),
    locale: locale.default('en'),
    // Read as any string, so whatever is stored stays visible and, if unusable, fails answers loudly (unknown_model) instead of being ignored.
    defaultModel: z.string().max(200).nullable().default(null).describe(DEFAULT_MODEL_DOC),
    notifications: z
      .object({
        email: notifications.email.default(NOTIFICATION_DEFAULTS.email),
        push: notifications.push.default(NOTIFICATION_DEFAULTS.push),
        sms: notifications.sms.default(NOTIFICATION_DEFAULTS.sms),
        slack: notifications.slack.default(NOTIFICATION_DEFAULTS.slack),
        inApp: notifications.inApp.default(NOTIFICATION_DEFAULTS.inApp),
        digest: notifications.digest.default(NOTIFICATION_DEFAULTS.digest),
        digestTime: notifications.digestTime.default(NOTIFICATION_DEFAULTS.digestTime),
        digestDay: notifications.digestDay.default(NOTIFICATION_DEFAULTS.digestDay),
        quietHours: notifications.quietHours.default(NOTIFICATION_DEFAULTS.quietHours),
      })
      .strict()
      .default(NOTIFICATION_DEFAULTS),
    privacy: z
      .object({
        saveHistory: privacy.saveHistory.default(PRIVACY_DEFAULTS.saveHistory),
        allowTraining: privacy.allowTraining.default(PRIVACY_DEFAULTS.allowTraining),
        shareUsageAnalytics: privacy.shareUsageAnalytics.default(PRIVACY_DEFAULTS.shareUsageAnalytics),
      })
      .strict()
      .default(PRIVACY_DEFAULTS),
  })
  .strict()
  .meta({ id: 'Preferences' });

export type Preferences = z.output<typeof preferencesSchema>;

/** A PATCH body: any subset, nested objects merged field by field. */
export const preferencesPatchSchema = z
  .object({
    theme,
    timezone,
    locale,
    // Written as `provider:model`, the form a request's `model` takes. Read lazily: the ai module's
    // tables point at users, so users can be loaded while ai's front door is still being evaluated.
    defaultModel: z.lazy(() => modelId).nullable().describe(DEFAULT_MODEL_DOC),
    notifications: z.object(notifications).strict().partial(),
    privacy: z.object(privacy).strict().partial(),
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
