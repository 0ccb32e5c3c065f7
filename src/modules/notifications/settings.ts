import { z } from 'zod';
import { ConfigError } from '../../errors.ts';

export interface NotificationSettings {
  /** Notifications of one category one user may get per day (UTC); the excess is suppressed, `critical` ones excepted. */
  dailyLimit: number;
  /** Categories the deployment sends through `POST /v1/notifications`, beside those of Parley's modules. */
  categories: string[];
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

const categoryList = z
  .string()
  .transform((v) => v.split(',').map((s) => s.trim()).filter(Boolean))
  .pipe(z.array(z.string().regex(/^[a-z][a-z0-9-]*(\.[a-z0-9-]+)+$/, 'a dotted lower-case name such as app.order-shipped')).max(100));

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
  NOTIFICATIONS_DAILY_LIMIT: z.coerce.number().int().min(1).default(100),
  NOTIFICATIONS_CATEGORIES: categoryList.optional(),
  NOTIFICATIONS_DIGEST_CRON: z.string().min(9).max(100).default('*/5 * * * *'),
};

const envObject = z.object(notificationsEnv);

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
  return { dailyLimit: e.NOTIFICATIONS_DAILY_LIMIT, categories: e.NOTIFICATIONS_CATEGORIES ?? [], digestCron: e.NOTIFICATIONS_DIGEST_CRON, sms, slack };
}
