import type { Mailer } from '../../../platform/mail/mailer.ts';
import type { UsersService } from '../../users/index.ts';
import { renderEmail } from '../email.ts';
import { Undeliverable, type ChannelAdapter } from './channel.ts';

/**
 * Email through the mailer, with RFC 8058 one-click unsubscribe. Everyone has an address (verified, where sign-in needs it). Sent within the
 * delivery's own job (no second queue), so `sent` means the SMTP server took it; a permanent refusal
 * (5xx: no such mailbox) fails the delivery at once, a temporary one (4xx, a connection error) is retried.
 */
export function emailChannel(deps: {
  mailer: Mailer;
  publicUrl: string;
  /** With REQUIRE_EMAIL_VERIFICATION, an address not verified gets no notification: whoever signed up with it may not own it. */
  verifiedOnly: boolean;
  users: Pick<UsersService, 'byId'>;
}): ChannelAdapter {
  return {
    channel: 'email',
    concurrency: 4,
    async unreachable(userId) {
      if (!deps.verifiedOnly) return null;
      return (await deps.users.byId(userId))?.emailVerifiedAt ? null : 'email address not verified';
    },
    async deliver({ notification, category, recipient, unsubscribeUrl }) {
      const mail = renderEmail(category, notification, { publicUrl: deps.publicUrl, unsubscribeUrl }, recipient.locale);
      try {
        await deps.mailer.sendNow({ to: recipient.email, ...mail, headers: { 'List-Unsubscribe': `<${unsubscribeUrl}>`, 'List-Unsubscribe-Post': 'List-Unsubscribe=One-Click' } });
      } catch (err) {
        const refused = permanentRefusal(err);
        throw refused ? new Undeliverable(refused) : err;
      }
      return { status: 'sent' };
    },
  };
}

/** The SMTP server's answer when it refused for good (a 5xx: 550 no such mailbox), else null: a 4xx or a connection error may pass next time. */
export function permanentRefusal(err: unknown): string | null {
  const code = (err as { responseCode?: number }).responseCode;
  return code && code >= 500 && code < 600 ? `SMTP ${code}: ${(err as Error).message}`.slice(0, 500) : null;
}
