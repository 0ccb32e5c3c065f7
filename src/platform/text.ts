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
