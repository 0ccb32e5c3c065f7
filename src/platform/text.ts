/**
 * The first `max` UTF-16 code units of `text`, one fewer where the last would be
 * the high half of a surrogate pair: a cut never leaves a lone surrogate, which a
 * text column stores as U+FFFD and jsonb refuses.
 */
export function clip(text: string, max: number): string {
  if (text.length <= max) return text;
  const last = text.charCodeAt(max - 1);
  return text.slice(0, last >= 0xd800 && last <= 0xdbff ? max - 1 : max);
}

/**
 * Text PostgreSQL can store: text and jsonb refuse U+0000, which is dropped,
 * and jsonb a lone UTF-16 surrogate, made U+FFFD as a text column stores it.
 * For text that comes from outside (a model, a tool, an upstream's error).
 */
export const storableText = (text: string): string => (text.includes('\0') ? text.replaceAll('\0', '') : text).toWellFormed();

/** Bidirectional overrides, embeddings and isolates; line breaks, separators and control characters (see oneLine). */
const BIDI_CONTROLS = '\\u202A-\\u202E\\u2066-\\u2069';
const BREAKS = '\\p{Cc}\\p{Zl}\\p{Zp}';
const BIDI_CONTROL = new RegExp(`[${BIDI_CONTROLS}]`, 'gu');
const LINE_BREAKS = new RegExp(`[${BREAKS}]+`, 'gu');

/** Text that shows nothing: white space, format characters (U+200B and the like), Hangul fillers, the braille blank. */
const INVISIBLE = /^[\s\p{Cf}\u115f\u1160\u2800\u3164\uffa0]*$/u;

/** Whether text shows nothing at all (see INVISIBLE): a message of it says nothing, a name of it lists as a blank row. */
export const isBlank = (text: string): boolean => INVISIBLE.test(text);

/** Text `oneLine` leaves as it is: what a field that must be one line (a display name) accepts. */
export const ONE_LINE = new RegExp(`^[^${BREAKS}${BIDI_CONTROLS}]*$`, 'u');

/**
 * Text as one line, for where it is shown as one (an email's subject, a message's first line, a name):
 * bidirectional overrides, embeddings and isolates (U+202A–U+202E, U+2066–U+2069) are dropped, for they
 * make `Invoice \u202Efdp.exe` read as `Invoice exe.pdf`; line breaks, separators and control characters
 * become a space.
 */
export const oneLine = (text: string) => text.replace(BIDI_CONTROL, '').replace(LINE_BREAKS, ' ');

/**
 * Text as HTML shows it, in an element or a quoted attribute: `& < > " '` as character references.
 * Mustache's own `escape` also encodes `/`, `=` and `` ` `` (a defence for unquoted attributes, which
 * Parley does not write), and so every link in an email as `https:&#x2F;&#x2F;…`; this one keeps them.
 * The one escape the notification templates (the HTML part), the account emails and Parley's pages use.
 */
export const escapeHtml = (text: string): string => text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
