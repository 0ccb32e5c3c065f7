import { z } from 'zod';

export interface NotificationSettings {
  /** Notifications of one category one user may get per day (UTC); the excess is suppressed, `critical` ones excepted. */
  dailyLimit: number;
  /** Categories the deployment sends through `POST /v1/notifications`, beside those of Parley's modules. */
  categories: string[];
  /** When the digest schedule looks for users whose digest time has come (croner syntax, UTC). */
  digestCron: string;
}

const categoryList = z
  .string()
  .transform((v) => v.split(',').map((s) => s.trim()).filter(Boolean))
  .pipe(z.array(z.string().regex(/^[a-z][a-z0-9-]*(\.[a-z0-9-]+)+$/, 'a dotted lower-case name such as app.order-shipped')).max(100));

export const notificationsEnv = {
  NOTIFICATIONS_DAILY_LIMIT: z.coerce.number().int().min(1).default(100),
  NOTIFICATIONS_CATEGORIES: categoryList.optional(),
  NOTIFICATIONS_DIGEST_CRON: z.string().min(9).max(100).default('*/5 * * * *'),
};

const envObject = z.object(notificationsEnv);

export function notificationSettings(e: z.output<typeof envObject>): NotificationSettings {
  return { dailyLimit: e.NOTIFICATIONS_DAILY_LIMIT, categories: e.NOTIFICATIONS_CATEGORIES ?? [], digestCron: e.NOTIFICATIONS_DIGEST_CRON };
}
