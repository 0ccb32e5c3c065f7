import { readFileSync } from 'node:fs';
import Mustache from 'mustache';
import { z } from 'zod';
import { ConfigError } from '../../errors.ts';
import { envCron, envInt } from '../../platform/config/env.ts';
import type { NotificationCategory } from '../module.ts';

export interface NotificationSettings {
  /** Notifications of one category one user may get per day (UTC); the excess is suppressed, `critical` ones excepted. */
  dailyLimit: number;
  /** Categories the deployment sends through `POST /v1/notifications`, beside those of Parley's modules: from the list and the file. */
  categories: NotificationCategory[];
  /** When the digest schedule looks for users whose digest time has come (croner syntax, UTC). */
  digestCron: string;
  /** Text messages through a Twilio-compatible API; null when SMS_ACCOUNT_SID, SMS_AUTH_TOKEN and SMS_FROM are not all set (no SMS channel). */
  sms: SmsSettings | null;
  slack: SlackSettings;
}

export interface SmsSettings {
  /** The API's origin: https://api.twilio.com, or a compatible service. */
  providerUrl: string;
  accountSid: string;
  authToken: string;
  /** The sender: a number (E.164), an alphanumeric sender id, or a Messaging Service SID (`MG…`). */
  from: string;
}

export interface SlackSettings {
  /** A bot token (`xoxb-…`) of the deployment's Slack app: users may then name a member or channel id; null: incoming webhooks only. */
  botToken: string | null;
  /** Slack's Web API base (chat.postMessage is under it). */
  apiUrl: string;
}

const categoryName = z.string().regex(/^[a-z][a-z0-9-]*(\.[a-z0-9-]+)+$/, 'a dotted lower-case name such as app.order-shipped');
const categoryList = z
  .string()
  .transform((v) => v.split(',').map((s) => s.trim()).filter(Boolean))
  .pipe(z.array(categoryName).max(100));

/** A template Mustache reads: one with a section left open is refused at start, not by every send that uses it. */
function parses(text: string, ctx: z.RefinementCtx) {
  try {
    Mustache.parse(text);
  } catch (err) {
    ctx.addIssue({ code: 'custom', message: `not a Mustache template: ${(err as Error).message}` });
  }
}
const template = z
  .object({ subject: z.string().min(1).max(500).superRefine(parses).optional(), text: z.string().max(20_000).superRefine(parses).optional(), html: z.string().max(100_000).superRefine(parses).optional() })
  .strict();
const locale = z.string().regex(/^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*$/, 'a BCP 47 language tag such as fr or pt-BR');

/** NOTIFICATIONS_CONFIG: the deployment's categories with their defaults and email templates, translations included. */
const fileSchema = z
  .object({
    categories: z
      .array(
        z
          .object({
            name: categoryName,
            description: z.string().min(1).max(500),
            channels: z.object({ inApp: z.boolean(), email: z.boolean(), push: z.boolean(), sms: z.boolean(), slack: z.boolean() }).strict().partial().optional(),
            email: template.extend({ translations: z.record(locale, template).optional() }).strict().optional(),
          })
          .strict(),
      )
      .max(100),
  })
  .strict();

/** The SMS channel's provider (Twilio's REST API, or one that speaks it); the channel exists only when all three credentials are set. */
export const smsEnv = {
  SMS_PROVIDER_URL: z.url({ protocol: /^https?$/ }).default('https://api.twilio.com'),
  SMS_ACCOUNT_SID: z.string().min(1).max(64).optional(),
  SMS_AUTH_TOKEN: z.string().min(1).max(256).optional(),
  SMS_FROM: z.string().min(1).max(64).optional(),
};

/** The Slack channel: incoming webhooks need nothing; a bot token lets users name a member or channel id instead. */
export const slackEnv = {
  SLACK_BOT_TOKEN: z.string().min(1).max(256).optional(),
  SLACK_API_URL: z.url({ protocol: /^https?$/ }).default('https://slack.com/api'),
};

export const notificationsEnv = {
  ...smsEnv,
  ...slackEnv,
  NOTIFICATIONS_DAILY_LIMIT: envInt(1, 1e9).default(100),
  NOTIFICATIONS_CATEGORIES: categoryList.optional(),
  NOTIFICATIONS_CONFIG: z.string().min(1).optional(),
  NOTIFICATIONS_DIGEST_CRON: envCron.default('*/5 * * * *'),
};

const envObject = z.object(notificationsEnv);

function readFile(path: string): NotificationCategory[] {
  let parsed;
  try {
    parsed = fileSchema.safeParse(JSON.parse(readFileSync(path, 'utf8')));
  } catch (err) {
    throw new ConfigError(`Invalid configuration:\n  NOTIFICATIONS_CONFIG: cannot read ${path}: ${(err as Error).message}`);
  }
  if (!parsed.success) throw new ConfigError(`Invalid configuration:\n${parsed.error.issues.map((i) => `  NOTIFICATIONS_CONFIG ${i.path.join('.')}: ${i.message}`).join('\n')}`);
  return parsed.data.categories;
}

export function notificationSettings(e: z.output<typeof envObject>): NotificationSettings {
  const smsSet = { SMS_ACCOUNT_SID: e.SMS_ACCOUNT_SID, SMS_AUTH_TOKEN: e.SMS_AUTH_TOKEN, SMS_FROM: e.SMS_FROM };
  const missing = Object.entries(smsSet).filter(([, v]) => !v).map(([k]) => k);
  // Half a configuration is a mistake, not a choice to go without SMS.
  if (missing.length && missing.length < 3) throw new ConfigError(`SMS needs ${missing.join(' and ')} as well (or none of SMS_ACCOUNT_SID, SMS_AUTH_TOKEN, SMS_FROM)`);
  const sms =
    e.SMS_ACCOUNT_SID && e.SMS_AUTH_TOKEN && e.SMS_FROM
      ? { providerUrl: e.SMS_PROVIDER_URL.replace(/\/+$/, ''), accountSid: e.SMS_ACCOUNT_SID, authToken: e.SMS_AUTH_TOKEN, from: e.SMS_FROM }
      : null;
  const slack = { botToken: e.SLACK_BOT_TOKEN ?? null, apiUrl: e.SLACK_API_URL.replace(/\/+$/, '') };
  const fromFile = e.NOTIFICATIONS_CONFIG ? readFile(e.NOTIFICATIONS_CONFIG) : [];
  const named = (e.NOTIFICATIONS_CATEGORIES ?? []).filter((name) => !fromFile.some((c) => c.name === name));
  return {
    dailyLimit: e.NOTIFICATIONS_DAILY_LIMIT,
    categories: [...fromFile, ...named.map((name) => ({ name, description: 'Sent by this deployment (NOTIFICATIONS_CATEGORIES).' }))],
    digestCron: e.NOTIFICATIONS_DIGEST_CRON,
    sms,
    slack,
  };
}
