import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { ConfigError } from '../../errors.ts';
import type { NotificationCategory } from '../module.ts';

export interface NotificationSettings {
  /** Notifications of one category one user may get per day (UTC); the excess is suppressed, `critical` ones excepted. */
  dailyLimit: number;
  /** Categories the deployment sends through `POST /v1/notifications`, beside those of Parley's modules: from the list and the file. */
  categories: NotificationCategory[];
  /** When the digest schedule looks for users whose digest time has come (croner syntax, UTC). */
  digestCron: string;
}

const categoryName = z.string().regex(/^[a-z][a-z0-9-]*(\.[a-z0-9-]+)+$/, 'a dotted lower-case name such as app.order-shipped');
const categoryList = z
  .string()
  .transform((v) => v.split(',').map((s) => s.trim()).filter(Boolean))
  .pipe(z.array(categoryName).max(100));

const template = z.object({ subject: z.string().min(1).max(500).optional(), text: z.string().max(20_000).optional(), html: z.string().max(100_000).optional() }).strict();
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

export const notificationsEnv = {
  NOTIFICATIONS_DAILY_LIMIT: z.coerce.number().int().min(1).default(100),
  NOTIFICATIONS_CATEGORIES: categoryList.optional(),
  NOTIFICATIONS_CONFIG: z.string().min(1).optional(),
  NOTIFICATIONS_DIGEST_CRON: z.string().min(9).max(100).default('*/5 * * * *'),
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
  const fromFile = e.NOTIFICATIONS_CONFIG ? readFile(e.NOTIFICATIONS_CONFIG) : [];
  const named = (e.NOTIFICATIONS_CATEGORIES ?? []).filter((name) => !fromFile.some((c) => c.name === name));
  return {
    dailyLimit: e.NOTIFICATIONS_DAILY_LIMIT,
    categories: [...fromFile, ...named.map((name) => ({ name, description: 'Sent by this deployment (NOTIFICATIONS_CATEGORIES).' }))],
    digestCron: e.NOTIFICATIONS_DIGEST_CRON,
  };
}
