import { randomInt } from 'node:crypto';
import { Forbidden, NotFound, RateLimited, UpstreamFailed, ValidationError } from '../../../errors.ts';
import type { Signer } from '../../../platform/crypto/cipher.ts';
import type { Db } from '../../../platform/db/database.ts';
import type { LimiterFactory } from '../../../platform/ratelimit/limiter.ts';
import { clip } from '../../../platform/text.ts';
import { createNotificationsRepository } from '../repository.ts';
import type { NotificationRow } from '../schema.ts';
import type { SmsSettings } from '../settings.ts';
import { absoluteLink, RetryLater, Undeliverable, type ChannelAdapter } from './channel.ts';
import { createPhonesRepository } from './sms-repository.ts';
import { twilioClient, verifyTwilioSignature } from './twilio.ts';

/** E.164: a plus, a country code that does not start with 0, 8 to 15 digits in all. */
export const E164 = /^\+[1-9]\d{7,14}$/;
/** The longest notification text sent: two segments of plain GSM text. */
export const SMS_MAX_CHARS = 320;
const CODE_TTL_MS = 10 * 60_000;
const CODE_TRIES = 5;
/** Codes a user may ask for, and codes one number may get, per 10 minutes. */
const CODES_PER_WINDOW = 3;
const WINDOW_SECONDS = 600;

/** `+••••••••0100`: the last 4 digits. */
export const maskPhone = (phone: string) => `+${'•'.repeat(Math.max(0, phone.length - 5))}${phone.slice(-4)}`;

/** Title, body and link in at most `SMS_MAX_CHARS` characters: the body is cut (with …, never inside an emoji) before the link is dropped. */
export function smsText(n: Pick<NotificationRow, 'title' | 'body' | 'link'>, publicUrl: string): string {
  const link = n.link ? absoluteLink(n.link, publicUrl) : '';
  const tail = link && link.length <= SMS_MAX_CHARS / 2 ? `\n${link}` : '';
  const head = n.body ? `${n.title}\n${n.body}` : n.title;
  const room = SMS_MAX_CHARS - tail.length;
  return (head.length > room ? `${clip(head, room - 1).trimEnd()}…` : head) + tail;
}

/**
 * The SMS channel: text messages through a Twilio-compatible API to the one phone number each user
 * verified with a code (`POST /v1/notifications/sms/phone`, then `/verify`), and delivery receipts from the
 * provider's signed status callbacks. Exists only when the deployment configured SMS (settings.sms).
 */
export function createSms(deps: { db: Db; settings: SmsSettings; signer: Signer; limiters: LimiterFactory; publicUrl: string }) {
  const phones = createPhonesRepository(deps.db);
  const notifications = createNotificationsRepository(deps.db);
  const twilio = twilioClient(deps.settings);
  const perUser = deps.limiters.create({ name: 'sms-code:user', points: CODES_PER_WINDOW, durationSeconds: WINDOW_SECONDS });
  const perNumber = deps.limiters.create({ name: 'sms-code:phone', points: CODES_PER_WINDOW, durationSeconds: WINDOW_SECONDS });
  const statusUrl = `${deps.publicUrl}/v1/notifications/sms/status`;
  // Bound to the user and number, keyed: a leaked row does not give the code away (10^6 codes are quickly tried against a plain hash).
  const codeData = (userId: string, phone: string, code: string) => `${userId}:${phone}:${code}`;

  const adapter: ChannelAdapter = {
    channel: 'sms',
    concurrency: 4,
    async unreachable(userId) {
      const row = await phones.get(userId);
      return row?.verifiedAt ? null : 'no_verified_phone';
    },
    async deliver({ notification, recipient, signal }) {
      const row = await phones.get(recipient.id);
      if (!row?.verifiedAt) throw new Undeliverable('no verified phone number');
      const sent = await twilio.send({ to: row.phone, body: smsText(notification, deps.publicUrl), statusCallback: statusUrl, signal });
      return { status: sent.status === 'delivered' ? 'delivered' : 'sent', externalId: sent.sid };
    },
  };

  /** Your number, masked, and whether it is verified (a code may be pending). */
  async function view(userId: string) {
    const row = await phones.get(userId);
    if (!row) throw NotFound('Phone number', 'sms_phone_not_found');
    const pending = !!row.codeMac && !!row.codeExpiresAt && row.codeExpiresAt > new Date() && row.codeTries < CODE_TRIES;
    return { phone: maskPhone(row.phone), verified: !!row.verifiedAt, verifiedAt: row.verifiedAt?.toISOString() ?? null, codeExpiresAt: pending ? row.codeExpiresAt!.toISOString() : null };
  }

  return {
    adapter,
    phone: view,

    /** Texts a 6-digit code to `phone`, which becomes the user's number (unverified until the code comes back). */
    async startVerification(userId: string, phone: string) {
      if (!E164.test(phone)) throw ValidationError('The phone number must be in E.164 form: + and 8 to 15 digits, such as +14155550100', 'phone_invalid');
      for (const [limiter, key] of [[perUser, userId], [perNumber, phone]] as const) {
        const limit = await limiter.consume(key);
        if (!limit.allowed) throw RateLimited(limit.resetMs / 1000, `At most ${CODES_PER_WINDOW} codes per ${WINDOW_SECONDS / 60} minutes`, 'sms_code_rate_limited');
      }
      const code = String(randomInt(0, 1_000_000)).padStart(6, '0');
      try {
        await twilio.send({ to: phone, body: `Your verification code is ${code}. It expires in ${CODE_TTL_MS / 60_000} minutes.` });
      } catch (err) {
        if (err instanceof Undeliverable) throw ValidationError(`This number cannot receive text messages (${err.message})`, 'phone_unreachable');
        if (err instanceof RetryLater) throw RateLimited(err.delayMs / 1000, 'The SMS provider is busy: try again shortly', 'sms_provider_busy');
        throw UpstreamFailed(`The code could not be sent: ${(err as Error).message}`, 'sms_send_failed');
      }
      await phones.setPending(userId, phone, deps.signer.sign(codeData(userId, phone, code)), new Date(Date.now() + CODE_TTL_MS));
      return view(userId);
    },

    /** Checks the code: right, the number is verified; wrong, one of its 5 tries is used; expired or used up, a new code is needed. */
    async verify(userId: string, code: string) {
      const before = await phones.get(userId);
      if (!before?.codeMac) throw ValidationError('No code is pending: ask for one with POST /v1/notifications/sms/phone', 'sms_code_not_pending');
      if (!before.codeExpiresAt || before.codeExpiresAt <= new Date()) {
        await phones.clearCode(userId);
        throw ValidationError('The code has expired: ask for a new one', 'sms_code_expired');
      }
      const row = await phones.useTry(userId, CODE_TRIES);
      if (!row?.codeMac) throw ValidationError('Too many wrong codes: ask for a new one', 'sms_code_exhausted');
      if (!deps.signer.verify(row.codeMac, codeData(userId, row.phone, code))) {
        const left = CODE_TRIES - row.codeTries;
        throw ValidationError(left > 0 ? `Wrong code: ${left} ${left === 1 ? 'try' : 'tries'} left` : 'Wrong code, and no tries left: ask for a new one', left > 0 ? 'sms_code_wrong' : 'sms_code_exhausted', { triesLeft: left });
      }
      await phones.markVerified(userId, row.phone);
      return view(userId);
    },

    async removePhone(userId: string): Promise<void> {
      await phones.delete(userId);
    },

    /**
     * A status callback from the provider (form fields `MessageSid`, `MessageStatus`), signed with the auth
     * token over the callback URL Parley gave it; `delivered` marks the delivery delivered, `undelivered` or
     * `failed` (the carrier gave up) marks a sent one failed with the provider's error code. Other statuses
     * (`queued`, `sending`, `sent`) change nothing.
     */
    async receipt(params: Record<string, string>, signature: string | undefined): Promise<void> {
      if (!verifyTwilioSignature(deps.settings.authToken, statusUrl, params, signature)) throw Forbidden('The X-Twilio-Signature does not match', 'bad_signature');
      const { MessageSid: sid, MessageStatus: status, ErrorCode: errorCode } = params;
      if (!sid) return;
      if (status === 'delivered') await notifications.markDelivered('sms', sid);
      else if (status === 'undelivered' || status === 'failed') await notifications.markUndelivered('sms', sid, `SMS ${status}${errorCode ? ` (error ${errorCode})` : ''}`);
    },
  };
}

export type Sms = ReturnType<typeof createSms>;
