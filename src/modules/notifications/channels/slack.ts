import { NotFound, ValidationError } from '../../../errors.ts';
import type { Cipher } from '../../../platform/crypto/cipher.ts';
import type { Db } from '../../../platform/db/database.ts';
import { clip } from '../../../platform/text.ts';
import { parseWebhookUrl, resolvePublic } from '../../webhooks/index.ts';
import type { NotificationRow, SlackDestinationRow } from '../schema.ts';
import type { SlackSettings } from '../settings.ts';
import { absoluteLink, Undeliverable, type ChannelAdapter } from './channel.ts';
import { postIncomingWebhook, postMessage, WebhookGone, type SlackMessage } from './slack-api.ts';
import { createSlackRepository } from './slack-repository.ts';

/** A member (U…, W…), channel (C…, G…) or DM (D…) id, as Slack shows it. */
export const SLACK_ID = /^[CDGUW][A-Z0-9]{2,20}$/;
const SECTION_MAX = 3000;

const escapeMrkdwn = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
/** The first `max` characters of escaped text, never half an emoji or half an entity (`&am` would show as text). */
const cutEscaped = (s: string, max: number) => clip(s, max).replace(/&[a-z]{0,3}$/, '');
const webhookContext = (userId: string) => `slack-webhook:${userId}`;

/** The message: the title in bold, the body, the link; below, a link that stops this category on Slack. */
export function slackMessage(n: Pick<NotificationRow, 'title' | 'body' | 'link' | 'category'>, opts: { publicUrl: string; unsubscribeUrl: string }): SlackMessage {
  const link = n.link ? absoluteLink(n.link, opts.publicUrl) : '';
  let text = `*${escapeMrkdwn(n.title)}*${n.body ? `\n${escapeMrkdwn(n.body)}` : ''}`;
  const tail = link ? `\n<${link.replace(/[<>|]/g, encodeURIComponent)}|Open>` : '';
  if (text.length + tail.length > SECTION_MAX) text = `${cutEscaped(text, SECTION_MAX - tail.length - 1)}…`;
  text += tail;
  return {
    text,
    blocks: [
      { type: 'section', text: { type: 'mrkdwn', text } },
      { type: 'context', elements: [{ type: 'mrkdwn', text: `<${opts.unsubscribeUrl}|Stop Slack messages about ${escapeMrkdwn(n.category)}>` }] },
    ],
  };
}

export type SlackDestinationInput = { webhookUrl: string } | { channel: string };

/**
 * The Slack channel: each user's messages go to one destination they set: an incoming webhook (any
 * deployment; its URL is a secret, kept encrypted, and must not reach a private address unless
 * WEBHOOKS_ALLOW_PRIVATE), or, when the deployment has a bot token, a member or channel id that
 * chat.postMessage posts to. A webhook Slack says is gone is removed.
 */
export function createSlack(deps: { db: Db; cipher: Cipher; settings: SlackSettings; allowPrivate: boolean; publicUrl: string }) {
  const repo = createSlackRepository(deps.db);
  const { botToken } = deps.settings;

  const view = (row: SlackDestinationRow) => ({ kind: row.kind, webhookUrl: row.webhookHint, channel: row.channel, createdAt: row.createdAt.toISOString() });

  const adapter: ChannelAdapter = {
    channel: 'slack',
    concurrency: 4,
    async unreachable(userId) {
      const row = await repo.get(userId);
      if (!row) return 'no_slack_destination';
      if (row.kind === 'channel' && !botToken) return 'slack_bot_not_configured';
      return null;
    },
    async deliver({ notification, recipient, unsubscribeUrl, signal }) {
      const row = await repo.get(recipient.id);
      if (!row) throw new Undeliverable('no Slack destination');
      const message = slackMessage(notification, { publicUrl: deps.publicUrl, unsubscribeUrl });
      if (row.kind === 'channel') {
        if (!botToken || !row.channel) throw new Undeliverable('Slack bot token not configured');
        const ts = await postMessage({ ...deps.settings, botToken }, row.channel, message, signal);
        return { status: 'sent', externalId: ts };
      }
      try {
        await postIncomingWebhook(deps.cipher.decrypt(row.webhookUrlEnc!, webhookContext(recipient.id)).toString(), message, { allowPrivate: deps.allowPrivate, signal });
      } catch (err) {
        if (err instanceof WebhookGone) await repo.deleteWebhook(recipient.id, row.webhookUrlEnc!);
        throw err;
      }
      return { status: 'sent' };
    },
  };

  return {
    adapter,
    /** Whether users may name a member or channel id (the deployment has a bot token). */
    botMode: botToken !== null,

    async destination(userId: string) {
      const row = await repo.get(userId);
      if (!row) throw NotFound('Slack destination', 'slack_destination_not_found');
      return view(row);
    },

    async setDestination(userId: string, input: SlackDestinationInput) {
      if ('channel' in input) {
        if (!botToken) throw ValidationError('This deployment has no Slack bot token (SLACK_BOT_TOKEN): use an incoming webhook URL', 'slack_bot_not_configured');
        if (!SLACK_ID.test(input.channel)) throw ValidationError('A Slack member or channel id such as U0123ABCD or C0123ABCD', 'slack_channel_invalid');
        return view(await repo.set(userId, { kind: 'channel', channel: input.channel, webhookUrlEnc: null, webhookHint: null }));
      }
      const url = parseWebhookUrl(input.webhookUrl);
      // Plain http only where private addresses are allowed (a closed network, tests): a webhook URL is a secret.
      if (url.protocol !== 'https:' && !deps.allowPrivate) throw ValidationError('The Slack webhook URL must use https', 'webhook_url_scheme');
      await resolvePublic(url, deps.allowPrivate);
      const href = url.toString();
      return view(
        await repo.set(userId, { kind: 'webhook', channel: null, webhookUrlEnc: deps.cipher.encrypt(href, webhookContext(userId)), webhookHint: `${url.origin}/…${href.slice(-4)}` }),
      );
    },

    async removeDestination(userId: string): Promise<void> {
      await repo.delete(userId);
    },
  };
}

export type Slack = ReturnType<typeof createSlack>;
