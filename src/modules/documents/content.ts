import { AppError, ValidationError } from '../../errors.ts';
import { clip, isBlank, oneLine } from '../../platform/text.ts';
import { LIMITS } from './settings.ts';

/** C0 control characters other than tab, line feed and carriage return, and DEL: never in Markdown, always in binary. */
const CONTROL = /[\u0001-\u0008\u000B\u000C\u000E-\u001F\u007F]/;

/**
 * Refuses what a document must not hold: more than `maxBytes` of UTF-8 (413),
 * or binary dressed as text (400; NUL is refused before this, by the HTTP layer).
 */
export function checkContent(content: { title: string; body: string }, maxBytes: number): void {
  const bytes = Buffer.byteLength(content.title) + Buffer.byteLength(content.body);
  if (bytes > maxBytes) {
    throw new AppError(413, 'document_too_large', 'Payload too large', `A document may hold at most ${maxBytes} bytes of text; this one has ${bytes}`, { extra: { maxBytes, bytes } });
  }
  const at = content.body.search(CONTROL);
  if (at >= 0 || CONTROL.test(content.title)) {
    throw ValidationError('The document holds control characters that text does not have: binary content is not a document', 'binary_content', at >= 0 ? { offset: at } : undefined);
  }
}

/** A title from the body's first line with words (a heading's marks taken off), else undefined. */
export function titleFromBody(body: string): string | undefined {
  for (const line of body.split('\n')) {
    // A heading mark alone (`#`) names nothing: the next line with words does.
    // As a title given is (names.ts): one line without direction overrides, showing something.
    const title = clip(oneLine(line.replace(/^\s*#{1,6}(\s+|$)/, '')).trim(), LIMITS.titleChars);
    if (title && !isBlank(title)) return title;
  }
  return undefined;
}

/** Tags as stored: trimmed, lower-case, each once. */
export const normalizeTags = (tags: string[]) => [...new Set(tags.map((t) => t.trim().toLowerCase()).filter(Boolean))].slice(0, LIMITS.tags);
