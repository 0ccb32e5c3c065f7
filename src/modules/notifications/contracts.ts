import { z } from 'zod';
import { pageQuery } from '../../http/pagination.ts';
import { CHANNELS, DELIVERY_STATUSES, PRIORITIES } from './schema.ts';

const channelStatus = z.object({
  status: z
    .enum(DELIVERY_STATUSES)
    .describe('queued (a job will send it), held (quiet hours or the digest), sent (the service took it), delivered (the service confirmed it reached the person), failed, suppressed'),
  reason: z
    .string()
    .nullable()
    .describe('suppressed: `preference`, `daily_limit`, `unreachable: <why>`, `account_disabled` (an administrator disabled the account) or `recipient_deleted`; held: `quiet_hours` or `digest`; sent: `digest` when it went in one; failed (or queued for a retry): the last error'),
  attempts: z.number().int(),
  updatedAt: z.string(),
  heldUntil: z.string().nullable().describe('held for quiet hours: when it goes out'),
});

/** One entry per channel this deployment has (in-app and email always; push, SMS and Slack when configured). */
const perChannel = <T extends z.ZodType>(value: T) => z.object(Object.fromEntries(CHANNELS.map((c) => [c, value.optional()])) as Record<(typeof CHANNELS)[number], z.ZodOptional<T>>);

export const notificationSchema = z
  .object({
    id: z.uuid(),
    category: z.string(),
    title: z.string(),
    body: z.string().describe('Plain text'),
    markdown: z.string().nullable().describe('The same content in Markdown, for clients that render it'),
    link: z.string().nullable(),
    data: z.record(z.string(), z.unknown()),
    priority: z.enum(PRIORITIES),
    readAt: z.string().nullable(),
    createdAt: z.string(),
    channels: perChannel(channelStatus).describe('What happened on each channel'),
  })
  .meta({ id: 'Notification' });

export const categorySchema = z
  .object({
    name: z.string(),
    description: z.string(),
    channels: perChannel(z.boolean()).describe('On by default, per channel of this deployment'),
  })
  .meta({ id: 'NotificationCategory' });

export const listQuery = pageQuery.extend({
  unread: z
    .enum(['true', 'false'])
    .transform((v) => v === 'true')
    .optional()
    .describe('true: unread ones only'),
});

const channelPreference = z.object({
  enabled: z.boolean().describe('Whether this category is sent on this channel (before the all-notifications switch)'),
  default: z.boolean().describe("The category's default"),
  chosen: z.boolean().describe('true: the user chose `enabled`; false: it is the default'),
  allOff: z.boolean().describe('The user turned this channel off for every category (`notifications` in /v1/me/preferences): nothing is sent on it'),
});

export const preferencesResponse = z.object({
  data: z.array(z.object({ category: z.string(), description: z.string(), channels: perChannel(channelPreference) })),
});

export const preferencesBody = z
  .object({
    preferences: z
      .array(z.object({ category: z.string().min(1).max(100), channel: z.enum(CHANNELS), enabled: z.boolean() }).strict())
      .min(1)
      .max(200)
      // One statement upserts them all: a pair named twice would be a database error, and which choice wins a guess.
      .superRefine((choices, ctx) => {
        const seen = new Set<string>();
        choices.forEach((c, i) => {
          const pair = `${c.category} × ${c.channel}`;
          if (seen.has(pair)) ctx.addIssue({ code: 'custom', path: [i], message: `names ${pair} again: each category and channel at most once` });
          seen.add(pair);
        });
      }),
  })
  .strict();

/**
 * An http(s) URL, or a path of this deployment (channels that open outside the app put PUBLIC_URL before it). A
 * browser reads `//host` and `/\host` as another host, after dropping tabs and line breaks wherever they are, so a
 * path's second character is neither slash, and a link is one line with no control character.
 */
const link = z
  .string()
  .max(2000)
  .regex(/^(https?:\/\/|\/(?![/\\]))/, 'an http(s) URL or a path starting with / (not // or /\\, which browsers read as another host)')
  .regex(/^[^\p{Cc}\p{Zl}\p{Zp}]*$/u, 'one line, without control characters')
  // `https://` alone or `https://a b/` starts right but is no URL: an email's href, a push or a Slack link would go nowhere.
  .refine((v) => v.startsWith('/') || URL.canParse(v), 'a URL that parses, with a host');

export const sendBody = z
  .object({
    userId: z.uuid(),
    category: z.string().min(1).max(100),
    title: z.string().trim().min(1).max(200),
    body: z.string().max(10_000).default(''),
    markdown: z.string().max(20_000).nullable().optional(),
    link: link.nullable().optional(),
    data: z.record(z.string(), z.unknown()).optional().refine((d) => d === undefined || JSON.stringify(d).length <= 16_000, 'at most 16,000 characters of JSON'),
    priority: z.enum(PRIORITIES).default('normal').describe('`critical` passes the daily limit'),
  })
  .strict();

// Any text reaches the signature check: a short or garbled token is the same 400 `bad_signature` as a forged one.
export const unsubscribeQuery = z.object({ token: z.string().min(1).max(500) });
