import type { Logger } from '../../platform/observability/logger.ts';
import { outboxEvent, type BusSubscription } from '../module.ts';

/**
 * A reset that first proves an address reclaims the account: whoever held it until then may have been someone
 * else, who registered places of their own to be sent the account's data (webhook endpoints, browsers, a Slack
 * channel, a phone, MCP servers). Their modules drop them on `user.reclaimed`, published by this queue's job,
 * which the reset queues in its own transaction (see outboxEvent). Only what was set up before `provedAt`
 * goes: an event delivered again later leaves what the owner set up since.
 */
export const reclaimed = outboxEvent('auth.reclaimed', 'user.reclaimed');

/**
 * A module's subscription to `user.reclaimed`: `drop` removes what the user set up before the proof and says what
 * went (nothing: undefined), which is logged under `what`.
 */
export function onReclaimed(
  module: string,
  logger: Logger,
  what: string,
  drop: (userId: string, before: Date) => Promise<Record<string, unknown> | undefined>,
): BusSubscription {
  return {
    group: `${module}.reclaimed`,
    types: ['user.reclaimed'],
    async handler(event) {
      if (event.type !== 'user.reclaimed') return;
      const { userId, provedAt } = event.payload;
      const dropped = await drop(userId, new Date(provedAt));
      if (dropped) logger.info({ userId, ...dropped }, `${what} of a reclaimed account removed`);
    },
  };
}
