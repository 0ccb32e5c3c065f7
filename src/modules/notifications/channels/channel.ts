import type { NotificationCategory } from '../../module.ts';
import type { NotificationRow, OutboundChannel } from '../schema.ts';

/** Who a notification goes to, as a channel needs them. */
export interface Recipient {
  id: string;
  email: string;
  name: string | null;
  locale: string;
  timezone: string;
}

/** One delivery for a channel to make. */
export interface Outgoing {
  deliveryId: string;
  notification: NotificationRow;
  category: NotificationCategory | undefined;
  recipient: Recipient;
  /** One-click link that turns this category off on this channel (email's List-Unsubscribe; others may show it). */
  unsubscribeUrl: string;
  /** 1 on the first try. */
  attempt: number;
  signal: AbortSignal;
}

export interface Delivered {
  /** sent: the channel's service took it; delivered: it says it reached the person or device. */
  status: 'sent' | 'delivered';
  /** The service's id for it (a message sid, a Slack ts), kept on the delivery. */
  externalId?: string | null;
}

/**
 * A notification channel's adapter: the port each of email, web push, SMS and Slack implements. The
 * notifications service decides whether and when to send (preferences, limits, quiet hours, digests),
 * queues one job per delivery and retries; the adapter only reaches the person.
 *
 * Throwing `RetryLater` asks for the next try after the service's own wait (a 429's `Retry-After`);
 * `Undeliverable` fails the delivery at once (nothing a retry could fix); any other error is retried
 * with backoff.
 */
export interface ChannelAdapter {
  channel: OutboundChannel;
  /** null when the user can be reached here now; otherwise why not (`no_subscription`, `no_verified_number`), and the delivery is suppressed. */
  unreachable(userId: string): Promise<string | null>;
  deliver(outgoing: Outgoing): Promise<Delivered>;
  /** Jobs of this channel run at once per worker. */
  concurrency?: number;
}

/** The service asked us to wait (429 with `Retry-After`, a 503 with one): retried after `delayMs`. */
export class RetryLater extends Error {
  readonly delayMs: number;
  constructor(message: string, delayMs: number) {
    super(message);
    this.name = 'RetryLater';
    this.delayMs = delayMs;
  }
}

/** Nothing a retry could fix (a refused key, a number that does not exist): the delivery fails now. */
export class Undeliverable extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'Undeliverable';
  }
}

/**
 * A link that opens outside the app (an email, a text, a Slack message): a path is one of this deployment's,
 * so it goes after PUBLIC_URL. Appended rather than resolved, it keeps PUBLIC_URL's own path, and stays on its
 * origin whatever the path is (`//host` or `/\host`, refused since but maybe stored before, become a path there).
 */
export const absoluteLink = (link: string, publicUrl: string) => (link.startsWith('/') ? publicUrl + link : link);

/** Reads an HTTP `Retry-After` (seconds or a date) as milliseconds, bounded; undefined when absent or unreadable. */
export function retryAfterMs(header: string | null | undefined, maxMs = 3_600_000): number | undefined {
  if (!header) return undefined;
  const seconds = Number(header);
  const ms = Number.isFinite(seconds) ? seconds * 1000 : Date.parse(header) - Date.now();
  return Number.isFinite(ms) ? Math.min(Math.max(ms, 0), maxMs) : undefined;
}
