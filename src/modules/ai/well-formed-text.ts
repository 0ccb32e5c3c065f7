import { storableText } from '../../platform/text.ts';

/**
 * A model's text as it streams in, made storable piece by piece. A NUL
 * (U+0000), which PostgreSQL text and jsonb cannot hold, is dropped. A lone
 * UTF-16 surrogate (an upstream can send `\ud800` in its JSON) is fine in a JS
 * string but not in a jsonb column, where the answer is stored: it becomes
 * U+FFFD, as a text column would store it. A pair split across two pieces (high
 * half at the end of one, low half at the start of the next) is not lone: the
 * high half is held back until the next piece joins it, or the text ends.
 */
export function wellFormedText() {
  let held = '';
  return {
    /** The piece to pass on; may be empty when all it held was a high half. */
    next(piece: string): string {
      let text = held + piece;
      held = '';
      const last = text.charCodeAt(text.length - 1);
      if (last >= 0xd800 && last <= 0xdbff) {
        held = text.slice(-1);
        text = text.slice(0, -1);
      }
      return storableText(text);
    },
    /** At the end of the text: a high half still held was lone after all. */
    end(): string {
      const rest = held && '\uFFFD';
      held = '';
      return rest;
    },
  };
}
