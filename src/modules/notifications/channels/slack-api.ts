import http from 'node:http';
import https from 'node:https';
import { AddressRefused, resolvePublicHost, type HostLookup } from '../../../platform/net/public-address.ts';
import type { SlackSettings } from '../settings.ts';
import { RetryLater, Undeliverable, retryAfterMs } from './channel.ts';

/** chat.postMessage errors no retry fixes: the token, the app's rights, or the channel are wrong. */
const PERMANENT_ERRORS = new Set([
  'channel_not_found', 'not_in_channel', 'is_archived', 'invalid_auth', 'not_authed', 'account_inactive', 'token_revoked', 'token_expired',
  'no_permission', 'missing_scope', 'restricted_action', 'user_not_found', 'cannot_dm_bot', 'msg_too_long', 'no_text', 'invalid_blocks', 'team_access_not_granted', 'ekm_access_denied',
]);
const TIMEOUT_MS = 15_000;

export interface SlackMessage {
  text: string;
  blocks?: unknown[];
}

/** Thrown for an incoming webhook Slack says is gone (404/410: `no_service`, `channel_not_found`, `channel_is_archived`): its destination is removed. */
export class WebhookGone extends Undeliverable {}

/**
 * Slack's Web API `chat.postMessage` with the deployment's bot token. Slack answers 200 with `{ok:false, error}` for
 * most failures: `ratelimited` (or an HTTP 429) becomes `RetryLater` with its Retry-After; the errors that name a
 * wrong token, channel or right `Undeliverable`; anything else a plain error (retried). Returns the message's `ts`.
 */
export async function postMessage(settings: SlackSettings & { botToken: string }, channel: string, message: SlackMessage, signal?: AbortSignal): Promise<string> {
  const res = await fetch(`${settings.apiUrl}/chat.postMessage`, {
    method: 'POST',
    headers: { authorization: `Bearer ${settings.botToken}`, 'content-type': 'application/json; charset=utf-8' },
    body: JSON.stringify({ channel, ...message }),
    signal: signal ? AbortSignal.any([signal, AbortSignal.timeout(TIMEOUT_MS)]) : AbortSignal.timeout(TIMEOUT_MS),
  });
  const retryAfter = retryAfterMs(res.headers.get('retry-after'));
  let body: { ok?: boolean; error?: string; ts?: string } = {};
  try {
    body = (await res.json()) as typeof body;
  } catch {
    // Not JSON: a proxy's page; the status says enough.
  }
  if (res.status === 429 || body.error === 'ratelimited') throw new RetryLater('Slack: ratelimited', retryAfter ?? 30_000);
  if (body.ok && body.ts) return body.ts;
  const what = `Slack chat.postMessage: ${body.error ?? `HTTP ${res.status}`}`;
  if (body.error && PERMANENT_ERRORS.has(body.error)) throw new Undeliverable(what);
  throw new Error(what);
}

/**
 * A POST to a user's incoming webhook: connected to the address checked against the private ranges (unless
 * allowed), so a DNS answer changed since registration cannot aim it inside the network; no redirects. Slack
 * answers 200 `ok`; 429 with Retry-After; 404/410 when the webhook or its channel is gone (`WebhookGone`);
 * another 4xx is `Undeliverable`; a 5xx or a network failure is retried. So is a DNS lookup that failed (EAI_AGAIN,
 * a timeout); a private address, or a name that does not exist, is `Undeliverable`. `lookup`: the system resolver's
 * stand-in, for a test.
 */
export async function postIncomingWebhook(rawUrl: string, message: SlackMessage, opts: { allowPrivate: boolean; signal?: AbortSignal; lookup?: HostLookup }): Promise<void> {
  const url = new URL(rawUrl);
  let target;
  try {
    target = await resolvePublicHost(url, opts.allowPrivate, undefined, opts.lookup);
  } catch (err) {
    if (err instanceof AddressRefused && !err.temporary) throw new Undeliverable(`Slack webhook: ${err.message}`);
    throw new Error(`Slack webhook: ${(err as Error).message}`, { cause: err });
  }
  const payload = JSON.stringify(message);
  const answer = await new Promise<{ status: number; retryAfter: string | undefined; text: string }>((resolve, reject) => {
    const client = url.protocol === 'https:' ? https : http;
    const req = client.request(
      url,
      {
        method: 'POST',
        headers: { 'content-type': 'application/json; charset=utf-8', 'content-length': String(Buffer.byteLength(payload)), 'user-agent': 'Parley-Notifications/1' },
        lookup: (_host, o, cb) => ((o as { all?: boolean }).all ? (cb as any)(null, [target]) : cb(null, target.address, target.family)),
        signal: opts.signal ? AbortSignal.any([opts.signal, AbortSignal.timeout(TIMEOUT_MS)]) : AbortSignal.timeout(TIMEOUT_MS),
      },
      (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (c: Buffer) => {
          // Slack's answers are a word or two: the rest of a large one is not read.
          if ((size += c.length) <= 4096) chunks.push(c);
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, retryAfter: res.headers['retry-after'], text: Buffer.concat(chunks).toString('utf8').slice(0, 200) }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(payload);
  });
  if (answer.status >= 200 && answer.status < 300) return;
  const what = `Slack webhook answered ${answer.status}${answer.text ? `: ${answer.text}` : ''}`;
  if (answer.status === 429) throw new RetryLater(what, retryAfterMs(answer.retryAfter) ?? 30_000);
  if (answer.status === 404 || answer.status === 410) throw new WebhookGone(what);
  if (answer.status >= 300 && answer.status < 500) throw new Undeliverable(what);
  throw new Error(what);
}
