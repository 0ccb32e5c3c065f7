import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface SlackPost {
  /** chat.postMessage: the channel it named; an incoming webhook: its path. */
  channel: string;
  text: string | undefined;
  blocks: unknown[] | undefined;
}

/**
 * A local Slack: the Web API's `POST /api/chat.postMessage` (JSON or form, `Authorization: Bearer <bot token>`,
 * answering 200 `{ok:true, channel, ts}` or 200 `{ok:false, error}`: `not_authed`, `invalid_auth`,
 * `channel_not_found` for a channel not in `channels`; HTTP 429 with `Retry-After: 1` and `ratelimited` while
 * `rateLimited` is above 0) and incoming webhooks under `/services/T…/B…/<secret>` (200 `ok`; 400
 * `invalid_payload` or `no_text`; 404 `no_service` once removed; 429 `rate_limited` with Retry-After).
 */
export async function startFakeSlack(opts: { botToken?: string } = {}) {
  const botToken = opts.botToken ?? `xoxb-${randomBytes(8).toString('hex')}`;
  const webhooks = new Set<string>();
  const state = {
    messages: [] as SlackPost[],
    webhookPosts: [] as SlackPost[],
    /** Requests answered, refused ones included. */
    requests: 0,
    /** The next this many requests (either API) are answered 429. */
    rateLimited: 0,
    /** Channel and member ids the bot may post to. */
    channels: new Set<string>(['U0123ABCD', 'C0123ABCD']),
  };

  const server = createServer(async (req, res) => {
    const url = new URL(req.url!, 'http://slack.local');
    const text = await readText(req);
    state.requests++;
    if (req.method === 'POST' && url.pathname === '/api/chat.postMessage') return postMessage(req, res, text);
    if (req.method === 'POST' && url.pathname.startsWith('/services/')) return incoming(url.pathname, res, text);
    res.writeHead(404, { 'content-type': 'text/plain' }).end('not_found');
  });

  function postMessage(req: IncomingMessage, res: ServerResponse, text: string) {
    const auth = req.headers.authorization;
    if (!auth) return ok(res, { ok: false, error: 'not_authed' });
    if (auth !== `Bearer ${botToken}`) return ok(res, { ok: false, error: 'invalid_auth' });
    if (state.rateLimited > 0) {
      state.rateLimited--;
      res.writeHead(429, { 'content-type': 'application/json', 'retry-after': '1' }).end(JSON.stringify({ ok: false, error: 'ratelimited' }));
      return;
    }
    let args: Record<string, any>;
    try {
      args = req.headers['content-type']?.startsWith('application/json') ? JSON.parse(text) : Object.fromEntries(new URLSearchParams(text));
    } catch {
      return ok(res, { ok: false, error: 'invalid_json' });
    }
    if (!args.channel) return ok(res, { ok: false, error: 'channel_not_found' });
    if (!state.channels.has(args.channel)) return ok(res, { ok: false, error: 'channel_not_found' });
    if (!args.text && !args.blocks) return ok(res, { ok: false, error: 'no_text' });
    state.messages.push({ channel: args.channel, text: args.text, blocks: args.blocks });
    const ts = `${Math.floor(Date.now() / 1000)}.${String(state.messages.length).padStart(6, '0')}`;
    ok(res, { ok: true, channel: args.channel, ts, message: { type: 'message', text: args.text, ts } });
  }

  function incoming(path: string, res: ServerResponse, text: string) {
    const plain = (status: number, body: string, headers: Record<string, string> = {}) => res.writeHead(status, { 'content-type': 'text/html', ...headers }).end(body);
    if (!webhooks.has(path)) return plain(404, 'no_service');
    if (state.rateLimited > 0) {
      state.rateLimited--;
      return plain(429, 'rate_limited', { 'retry-after': '1' });
    }
    let payload: Record<string, any>;
    try {
      payload = JSON.parse(text);
    } catch {
      return plain(400, 'invalid_payload');
    }
    if (!payload.text && !payload.blocks) return plain(400, 'no_text');
    state.webhookPosts.push({ channel: path, text: payload.text, blocks: payload.blocks });
    plain(200, 'ok');
  }

  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  return {
    url: base,
    apiUrl: `${base}/api`,
    botToken,
    state,
    /** A new incoming webhook's URL. */
    newWebhook(): string {
      const path = `/services/T${randomBytes(4).toString('hex').toUpperCase()}/B${randomBytes(4).toString('hex').toUpperCase()}/${randomBytes(12).toString('hex')}`;
      webhooks.add(path);
      return base + path;
    },
    /** The webhook is removed in Slack (or its channel archived): it answers 404 `no_service` from now on. */
    removeWebhook(url: string) {
      webhooks.delete(new URL(url).pathname);
    },
    postsTo: (url: string) => state.webhookPosts.filter((p) => p.channel === new URL(url).pathname),
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

async function readText(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

function ok(res: ServerResponse, body: unknown) {
  res.writeHead(200, { 'content-type': 'application/json; charset=utf-8' }).end(JSON.stringify(body));
}
