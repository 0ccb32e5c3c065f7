import Mustache, { type TemplateSpans } from 'mustache';
import { clip, escapeHtml, oneLine } from '../../platform/text.ts';
import type { EmailTemplate, NotificationCategory } from '../module.ts';
import { absoluteLink } from './channels/channel.ts';
import type { NotificationRow } from './schema.ts';

const DEFAULT_TEXT = '{{title}}\n\n{{body}}\n\n{{link}}\n\n--\nStop these emails ({{category}}): {{unsubscribeUrl}}\n';
const DEFAULT_HTML =
  '<!doctype html><html><body style="font-family:system-ui,sans-serif;color:#222;max-width:560px;margin:24px auto;line-height:1.5">' +
  '<h2 style="font-size:18px;margin:0 0 12px">{{title}}</h2><p style="white-space:pre-line;margin:0 0 16px">{{body}}</p>' +
  '{{#link}}<p><a href="{{link}}" style="color:#2557d6">Open</a></p>{{/link}}' +
  '<hr style="border:none;border-top:1px solid #ddd;margin:24px 0 8px"><p style="font-size:12px;color:#777">' +
  '<a href="{{unsubscribeUrl}}" style="color:#777">Stop emails about {{category}}</a></p></body></html>';

/** A value as a template shows it: an object or a list as its JSON, as it always has, where Mustache's would be `[object Object]`. */
const asText = (value: unknown): string => (typeof value === 'object' && value !== null ? JSON.stringify(value) : String(value));

/** What `{{x}}` puts in each part: the value HTML-escaped in the HTML part, as it is in the subject and the text part. */
const HTML_PART = { escape: (value: unknown) => escapeHtml(asText(value)) };
const TEXT_PART = { escape: asText };

/**
 * Mustache's writer, but `{{{x}}}` and `{{&x}}` (no escape) show an object or a list as its JSON too, where Mustache's
 * would be `[object Object]`: unescaped means only that, not another way to show a value.
 */
class EmailWriter extends Mustache.Writer {
  override unescapedValue(token: string[], context: Mustache.Context): string {
    const value: unknown = context.lookup(token[1]!);
    return (value === undefined || value === null ? undefined : asText(value)) as string;
  }
}
const writer = new EmailWriter();

/**
 * The category's template in the user's language: their exact tag, else their language, else the untranslated one.
 * A translation stands whole: a part it lacks is not taken from the untranslated template, which would mix languages.
 */
function templateFor(category: NotificationCategory | undefined, locale: string): EmailTemplate {
  const email = category?.email;
  if (!email) return {};
  const translations = email.translations ?? {};
  const lower = Object.fromEntries(Object.entries(translations).map(([tag, t]) => [tag.toLowerCase(), t]));
  return lower[locale.toLowerCase()] ?? lower[locale.split('-')[0]!.toLowerCase()] ?? email;
}

/** Each template of a category, named as NOTIFICATIONS_CONFIG names it (`email.translations.fr.text`). */
function templatesOf(category: NotificationCategory): [where: string, text: string][] {
  const email = category.email;
  if (!email) return [];
  const parts = (t: EmailTemplate, prefix: string) => (['subject', 'text', 'html'] as const).flatMap((part): [string, string][] => (t[part] === undefined ? [] : [[`${prefix}.${part}`, t[part]]]));
  return [...parts(email, 'email'), ...Object.entries(email.translations ?? {}).flatMap(([tag, t]) => parts(t, `email.translations.${tag}`))];
}

/**
 * Every category's templates read once, when the service is built at start: one Mustache cannot read (a section left
 * open) stops the start naming it, a module's as the deployment's (settings.ts refuses those first), rather than
 * failing each send that uses it.
 */
export function checkTemplates(categories: NotificationCategory[]): void {
  const problems = categories.flatMap((c) =>
    templatesOf(c).flatMap(([where, text]) => {
      try {
        writer.parse(text);
        return [];
      } catch (err) {
        return [`  notification category ${c.name} ${where}: not a Mustache template: ${(err as Error).message}`];
      }
    }),
  );
  if (problems.length) throw new Error(`Invalid notification email templates:\n${problems.join('\n')}`);
}

/** The `data` fields a template's tags name (`{{data.order}}`, `{{{data.order.id}}}`), leaving out what a section or an inverted section holds. */
function fieldsOutsideSections(tokens: TemplateSpans): string[] {
  return tokens.flatMap(([type, name]) => ((type === 'name' || type === '&') && name.startsWith('data.') ? [name.split('.')[1]!] : []));
}

/** The `data` fields a category's templates use outside a section (`{{#…}}`, `{{^…}}`) and `data` lacks. */
export function missingVariables(category: NotificationCategory, data: Record<string, unknown>): string[] {
  const email = category.email;
  if (!email) return [];
  const templates = [email, ...Object.values(email.translations ?? {})].flatMap((t) => [t.subject, t.text, t.html]).filter((t): t is string => !!t);
  const needed = new Set(templates.flatMap((t) => fieldsOutsideSections(Mustache.parse(t))));
  return [...needed].filter((field) => data[field] === undefined || data[field] === null);
}

/**
 * The email of a notification: the category's templates (in the user's language when there is a translation), or the
 * plain default look. A template with a text part and no HTML one is sent as text only: a default HTML part beside it
 * is what mail clients would show. A path link goes under PUBLIC_URL (a mail client has no page to resolve it against);
 * the subject is one line, whatever `data` a template put in it.
 */
export function renderEmail(category: NotificationCategory | undefined, n: NotificationRow, links: { publicUrl: string; unsubscribeUrl: string }, locale = 'en'): { subject: string; text: string; html?: string } {
  const values = { title: n.title, body: n.body, link: n.link ? absoluteLink(n.link, links.publicUrl) : '', category: n.category, data: n.data, unsubscribeUrl: links.unsubscribeUrl };
  const t = templateFor(category, locale);
  const html = t.html ?? (t.text === undefined ? DEFAULT_HTML : undefined);
  return {
    subject: clip(oneLine(writer.render(t.subject ?? '{{title}}', values, undefined, TEXT_PART)), 250),
    text: writer.render(t.text ?? DEFAULT_TEXT, values, undefined, TEXT_PART),
    ...(html === undefined ? {} : { html: writer.render(html, values, undefined, HTML_PART) }),
  };
}

/** The user's digest setting when the digest was made; `off`: what was held when they turned digests off. */
export type DigestPeriod = 'daily' | 'weekly' | 'off';

/** A digest: what was held, oldest first, as one email (at most 100 listed, the rest counted); path links go under PUBLIC_URL. */
export function renderDigest(items: NotificationRow[], opts: { period: DigestPeriod; publicUrl: string; unsubscribeUrl: string }) {
  const shown = items.slice(0, 100).map((n) => ({ ...n, link: n.link && absoluteLink(n.link, opts.publicUrl) }));
  const more = items.length - shown.length;
  const heading = `Your ${opts.period === 'off' ? '' : `${opts.period} `}digest: ${items.length} notification${items.length === 1 ? '' : 's'}`;
  const text =
    `${heading}\n\n` +
    shown.map((n) => `* ${n.title}${n.body ? `\n  ${n.body.replace(/\n/g, '\n  ')}` : ''}${n.link ? `\n  ${n.link}` : ''}`).join('\n\n') +
    (more > 0 ? `\n\n…and ${more} more.` : '') +
    `\n\n--\nStop notification emails: ${opts.unsubscribeUrl}\n`;
  const html =
    '<!doctype html><html><body style="font-family:system-ui,sans-serif;color:#222;max-width:560px;margin:24px auto;line-height:1.5">' +
    `<h2 style="font-size:18px;margin:0 0 12px">${escapeHtml(heading)}</h2><ul style="padding-left:18px">` +
    shown
      .map((n) => `<li style="margin:0 0 12px"><strong>${n.link ? `<a href="${escapeHtml(n.link)}" style="color:#2557d6">${escapeHtml(n.title)}</a>` : escapeHtml(n.title)}</strong>${n.body ? `<br><span style="white-space:pre-line">${escapeHtml(n.body)}</span>` : ''}</li>`)
      .join('') +
    `</ul>${more > 0 ? `<p>…and ${more} more.</p>` : ''}` +
    `<hr style="border:none;border-top:1px solid #ddd;margin:24px 0 8px"><p style="font-size:12px;color:#777"><a href="${escapeHtml(opts.unsubscribeUrl)}" style="color:#777">Stop notification emails</a></p></body></html>`;
  return { subject: heading, text, html };
}
