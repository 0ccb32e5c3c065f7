import { createHmac, randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface TwilioMessage {
  sid: string;
  to: string;
  from: string | undefined;
  messagingServiceSid: string | undefined;
  body: string;
  statusCallback: string | undefined;
}

/**
 * A local Twilio speaking its Messages API: `POST /2010-04-01/Accounts/{sid}/Messages.json`, form-encoded,
 * HTTP Basic auth with the account SID and auth token; answers 201 with the message's `sid` and `status`, or
 * Twilio's error JSON (`{code, message, more_info, status}`): 401 (20003) for wrong credentials, 400 (21211)
 * for a `To` in `invalidNumbers`, 429 (20429) with `Retry-After: 1` while `rateLimited` is above 0. It
 * posts status callbacks the way Twilio does: form fields, signed with `X-Twilio-Signature` over the
 * callback URL and the sorted fields.
 */
export async function startFakeTwilio(opts: { accountSid?: string; authToken?: string } = {}) {
  const accountSid = opts.accountSid ?? `AC${randomBytes(16).toString('hex')}`;
  const authToken = opts.authToken ?? randomBytes(16).toString('hex');
  const state = {
    messages: [] as TwilioMessage[],
    /** Every request to the Messages endpoint, refused ones included. */
    requests: 0,
    /** The next this many sends are answered 429. */
    rateLimited: 0,
    invalidNumbers: new Set<string>(),
  };

  const server = createServer(async (req, res) => {
    const url = new URL(req.url!, 'http://twilio.local');
    const path = /^\/2010-04-01\/Accounts\/([^/]+)\/Messages\.json$/.exec(url.pathname);
    if (req.method !== 'POST' || !path) return error(res, 404, 20404, 'The requested resource was not found');
    state.requests++;
    const expected = `Basic ${Buffer.from(`${accountSid}:${authToken}`).toString('base64')}`;
    if (req.headers.authorization !== expected || decodeURIComponent(path[1]!) !== accountSid) return error(res, 401, 20003, 'Authenticate');
    if (!req.headers['content-type']?.startsWith('application/x-www-form-urlencoded')) return error(res, 400, 20001, 'Unsupported content type');
    const form = new URLSearchParams(await readText(req));
    const to = form.get('To');
    const body = form.get('Body');
    if (!to || !body || !(form.get('From') || form.get('MessagingServiceSid'))) return error(res, 400, 21604, "A 'To', 'Body' and 'From' (or 'MessagingServiceSid') are required");
    if (state.rateLimited > 0) {
      state.rateLimited--;
      res.setHeader('retry-after', '1');
      return error(res, 429, 20429, 'Too Many Requests');
    }
    if (state.invalidNumbers.has(to)) return error(res, 400, 21211, `The 'To' number ${to} is not a valid phone number.`);
    const message: TwilioMessage = {
      sid: `SM${randomBytes(16).toString('hex')}`,
      to,
      from: form.get('From') ?? undefined,
      messagingServiceSid: form.get('MessagingServiceSid') ?? undefined,
      body,
      statusCallback: form.get('StatusCallback') ?? undefined,
    };
    state.messages.push(message);
    res.writeHead(201, { 'content-type': 'application/json' }).end(
      JSON.stringify({ sid: message.sid, account_sid: accountSid, to, from: message.from ?? null, body, status: 'queued', num_segments: '1', direction: 'outbound-api', api_version: '2010-04-01', error_code: null }),
    );
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;

  /** Twilio's signature, computed here on its own (not with Parley's code). */
  const sign = (url: string, params: Record<string, string>) =>
    createHmac('sha1', authToken)
      .update(url + Object.keys(params).sort().map((k) => `${k}${params[k]}`).join(''))
      .digest('base64');

  return {
    url: `http://127.0.0.1:${port}`,
    accountSid,
    authToken,
    state,
    to: (phone: string) => state.messages.filter((m) => m.to === phone),
    /** The 6-digit code of the last message to `phone`. */
    codeFor(phone: string): string {
      const last = state.messages.filter((m) => m.to === phone).at(-1);
      const code = last && /\b(\d{6})\b/.exec(last.body)?.[1];
      if (!code) throw new Error(`no code texted to ${phone}`);
      return code;
    },
    /**
     * Posts the status callback of a message, as Twilio would, to `reachAt` (Parley's real address: the
     * callback URL names its public one) and signed over the callback URL; `forge` signs with another token,
     * `tamper` changes fields after signing.
     */
    async statusCallback(message: TwilioMessage, status: string, reachAt: string, opts: { forge?: boolean; tamper?: Record<string, string>; errorCode?: string } = {}) {
      if (!message.statusCallback) throw new Error('the message asked for no status callback');
      const params: Record<string, string> = {
        AccountSid: accountSid,
        ApiVersion: '2010-04-01',
        From: message.from ?? '',
        MessageSid: message.sid,
        MessageStatus: status,
        SmsSid: message.sid,
        SmsStatus: status,
        To: message.to,
        ...(opts.errorCode ? { ErrorCode: opts.errorCode } : {}),
      };
      const signature = opts.forge ? createHmac('sha1', 'not-the-token').update(message.statusCallback).digest('base64') : sign(message.statusCallback, params);
      Object.assign(params, opts.tamper);
      const target = new URL(message.statusCallback);
      return fetch(reachAt + target.pathname + target.search, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded; charset=utf-8', 'x-twilio-signature': signature, 'i-twilio-idempotency-token': randomBytes(8).toString('hex') },
        body: new URLSearchParams(params).toString(),
      });
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

async function readText(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

function error(res: ServerResponse, status: number, code: number, message: string) {
  res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify({ code, message, more_info: `https://www.twilio.com/docs/errors/${code}`, status }));
}
