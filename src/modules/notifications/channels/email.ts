import type { Mailer } from '../../../platform/mail/mailer.ts';
import { renderEmail } from '../email.ts';
import type { ChannelAdapter } from './channel.ts';

/** Email through the mailer (the outbox, or SMTP's own retried queue), with RFC 8058 one-click unsubscribe. Everyone has an address. */
export function emailChannel(mailer: Mailer): ChannelAdapter {
  return {
    channel: 'email',
    concurrency: 4,
    unreachable: async () => null,
    async deliver({ notification, category, recipient, unsubscribeUrl }) {
      const mail = renderEmail(category, notification, unsubscribeUrl, recipient.locale);
      await mailer.send({ to: recipient.email, ...mail, headers: { 'List-Unsubscribe': `<${unsubscribeUrl}>`, 'List-Unsubscribe-Post': 'List-Unsubscribe=One-Click' } });
      return { status: 'sent' };
    },
  };
}
