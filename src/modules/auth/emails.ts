import type { MailMessage } from '../../platform/mail/mailer.ts';
import { escapeHtml } from '../../platform/text.ts';

type Email = Omit<MailMessage, 'to'>;

/** "24 hours", "1 hour", "15 minutes". */
export function duration(seconds: number): string {
  const [n, unit] = seconds % 3600 === 0 ? [seconds / 3600, 'hour'] : seconds % 60 === 0 ? [seconds / 60, 'minute'] : [seconds, 'second'];
  return `${n} ${unit}${n === 1 ? '' : 's'}`;
}

function layout(paragraphs: string[], action?: { label: string; url: string }): string {
  const body = paragraphs.map((p) => `<p>${escapeHtml(p)}</p>`).join('\n');
  const button = action
    ? `<p><a href="${escapeHtml(action.url)}" style="display:inline-block;padding:10px 18px;background:#111;color:#fff;border-radius:6px;text-decoration:none">${escapeHtml(action.label)}</a></p>\n` +
      `<p style="color:#666;font-size:13px">Or paste this link into your browser:<br>${escapeHtml(action.url)}</p>`
    : '';
  return `<!doctype html>\n<html><body style="font-family:system-ui,sans-serif;line-height:1.5;color:#111;max-width:560px">\n${body}\n${button}\n</body></html>`;
}

const greeting = (name: string | null) => (name ? `Hi ${name},` : 'Hi,');

export const emails = {
  verifyEmail(p: { name: string | null; link: string; ttlSeconds: number }): Email {
    const lines = [greeting(p.name), 'Confirm your email address to finish setting up your Parley account.'];
    const after = `The link works once and expires in ${duration(p.ttlSeconds)}. If you did not sign up, ignore this email.`;
    return {
      subject: 'Confirm your email address',
      text: `${lines.join('\n\n')}\n\n${p.link}\n\n${after}\n`,
      html: layout([...lines, after], { label: 'Confirm email', url: p.link }),
    };
  },

  passwordReset(p: { name: string | null; link: string; ttlSeconds: number }): Email {
    const lines = [greeting(p.name), 'Someone asked to reset the password of your Parley account. Choose a new password here:'];
    const after =
      `The link works once and expires in ${duration(p.ttlSeconds)}. Setting a new password signs you out everywhere. ` +
      'If you did not ask for this, ignore this email; your password stays as it is.';
    return {
      subject: 'Reset your password',
      text: `${lines.join('\n\n')}\n\n${p.link}\n\n${after}\n`,
      html: layout([...lines, after], { label: 'Reset password', url: p.link }),
    };
  },

  passwordChanged(p: { name: string | null; how: 'reset' | 'change'; resetUrl: string }): Email {
    const lines = [
      greeting(p.name),
      p.how === 'reset'
        ? 'The password of your Parley account was just reset, and every session was signed out.'
        : 'The password of your Parley account was just changed, and your other sessions were signed out.',
      `If this was not you, reset your password now at ${p.resetUrl} and review your account.`,
    ];
    return { subject: 'Your password was changed', text: `${lines.join('\n\n')}\n`, html: layout(lines) };
  },
};
