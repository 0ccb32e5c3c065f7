import { createHmac, timingSafeEqual } from 'node:crypto';
import type { SmsSettings } from '../settings.ts';
import { RetryLater, Undeliverable, retryAfterMs } from './channel.ts';

/** Twilio error codes no retry can fix: a bad or unreachable number, a recipient who replied STOP, a sender not allowed. */
const PERMANENT_CODES = new Set([21211, 21214, 21408, 21604, 21610, 21612, 21614, 21606, 21659, 30004, 30005, 30006]);

export interface SentMessage {
  sid: string;
  status: string;
}

/**
 * Twilio's Messages API (and services that speak it): POST
 * `/2010-04-01/Accounts/{sid}/Messages.json`, form-encoded, HTTP Basic auth with the account SID and
 * auth token. A 429 (or 503) becomes `RetryLater` with its Retry-After; a 4xx, or one of the error codes
 * that name a number that cannot be reached, `Undeliverable`; anything else a plain error (retried).
 */
export function twilioClient(settings: SmsSettings) {
  const endpoint = `${settings.providerUrl}/2010-04-01/Accounts/${encodeURIComponent(settings.accountSid)}/Messages.json`;
  const authorization = `Basic ${Buffer.from(`${settings.accountSid}:${settings.authToken}`).toString('base64')}`;

  return {
    async send(input: { to: string; body: string; statusCallback?: string; signal?: AbortSignal }): Promise<SentMessage> {
      const form = new URLSearchParams({ To: input.to, Body: input.body });
      // A Messaging Service picks the sender from its pool.
      if (/^MG[0-9a-f]{32}$/i.test(settings.from)) form.set('MessagingServiceSid', settings.from);
      else form.set('From', settings.from);
      if (input.statusCallback) form.set('StatusCallback', input.statusCallback);
      const signal = input.signal ? AbortSignal.any([input.signal, AbortSignal.timeout(15_000)]) : AbortSignal.timeout(15_000);
      const res = await fetch(endpoint, {
        method: 'POST',
        headers: { authorization, 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
        body: form.toString(),
        signal,
      });
      const text = await res.text();
      let json: { sid?: string; status?: string; code?: number; message?: string } = {};
      try {
        json = JSON.parse(text);
      } catch {
        // Not JSON: a proxy's error page; the status code says enough.
      }
      const what = `SMS provider answered ${res.status}${json.code ? ` (error ${json.code})` : ''}${json.message ? `: ${json.message}` : ''}`;
      if (res.status === 429 || res.status === 503) throw new RetryLater(what, retryAfterMs(res.headers.get('retry-after')) ?? 30_000);
      if (!res.ok) {
        if ((json.code && PERMANENT_CODES.has(json.code)) || (res.status >= 400 && res.status < 500 && res.status !== 408)) throw new Undeliverable(what);
        throw new Error(what);
      }
      if (!json.sid) throw new Error('SMS provider answered without a message sid');
      return { sid: json.sid, status: json.status ?? 'queued' };
    },
  };
}

export type TwilioClient = ReturnType<typeof twilioClient>;

/**
 * Twilio's request signature (`X-Twilio-Signature`): base64 of HMAC-SHA1, keyed with the auth token, of the
 * full URL Twilio called followed by each POST parameter's name and value, sorted by name.
 */
export function twilioSignature(authToken: string, url: string, params: Record<string, string>): string {
  const data = url + Object.keys(params).sort().map((k) => k + params[k]).join('');
  return createHmac('sha1', authToken).update(data, 'utf8').digest('base64');
}

/** Whether `signature` is Twilio's for this URL and these parameters (compared in constant time). */
export function verifyTwilioSignature(authToken: string, url: string, params: Record<string, string>, signature: string | undefined): boolean {
  if (!signature) return false;
  const expected = Buffer.from(twilioSignature(authToken, url, params));
  const given = Buffer.from(signature);
  return expected.length === given.length && timingSafeEqual(expected, given);
}
