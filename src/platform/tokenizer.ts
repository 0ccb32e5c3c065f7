/**
 * Text counted in tokens as OpenAI's tokenizers count it (gpt-tokenizer): a
 * model's encoding, a text's count, its first N tokens. Pure functions of the
 * text, so any module, and the threads that count long texts (the AI module's
 * TokenCounter, knowledge's passage splitter), use them as they are.
 */
import { createRequire } from 'node:module';
import { clip } from './text.ts';

type Encoding = typeof import('gpt-tokenizer');
const require = createRequire(import.meta.url);
/** Each table is built when its module loads (about 20 MB of heap): loaded on first use, so an idle server holds neither. */
let o200k: Encoding | undefined;
let cl100k: Encoding | undefined;

/** Special-token strings in user text are plain text here; the default would throw on them. */
const PLAIN = { disallowedSpecial: new Set<string>() };

/** Older OpenAI models use cl100k_base; everything else is counted with o200k_base, exact for current OpenAI models and a fair estimate for others. */
const CL100K = /^(gpt-4(?!o|\.\d)|gpt-3\.5)/;

/** The encoding `model` is counted with. */
export const encodingOf = (model: string): 'cl100k_base' | 'o200k_base' => (CL100K.test(model) ? 'cl100k_base' : 'o200k_base');

const encoding = (model: string): Encoding =>
  CL100K.test(model) ? (cl100k ??= require('gpt-tokenizer/encoding/cl100k_base') as Encoding) : (o200k ??= require('gpt-tokenizer') as Encoding);

/**
 * Longest piece of text the tokenizer is given at once. Its byte-pair merges
 * cost the square of a stretch with no word boundary in it: 80,000 of one
 * letter took over two seconds, so one request body of them could hold a
 * core for minutes.
 */
export const PIECE_CHARS = 4_096;

const isSpace = (c: number) => c === 32 || c === 9 || c === 10 || c === 13;

/**
 * `text` in pieces of at most PIECE_CHARS, each counted as it would be within
 * the whole: cut just before a space that follows a non-space, where the
 * tokenizer's pre-split (o200k and cl100k alike) starts a new word anyway (not
 * before a line break: `.\n` is one pre-token). A stretch without such a place (base64, one letter repeated) is cut
 * where it reaches the limit (never inside a surrogate pair), which may count
 * a token more than the whole would.
 */
export function* textPieces(text: string): Generator<string> {
  let start = 0;
  while (text.length - start > PIECE_CHARS) {
    const cut = pieceEnd(text, start);
    yield text.slice(start, cut);
    start = cut;
  }
  yield text.slice(start);
}

/** Where the piece of `text` that starts at `start` ends, for a text running more than PIECE_CHARS past it (see textPieces). */
function pieceEnd(text: string, start: number): number {
  let cut = start + PIECE_CHARS;
  while (cut > start + 1 && !(text.charCodeAt(cut) === 32 && !isSpace(text.charCodeAt(cut - 1)))) cut--;
  if (cut > start + 1) return cut;
  cut = start + PIECE_CHARS;
  const before = text.charCodeAt(cut - 1);
  return before >= 0xd800 && before <= 0xdbff ? cut - 1 : cut;
}

/**
 * The pieces of a text that grows at its end (an answer as it streams) that textPieces cuts from `start` on, as far
 * as text added later cannot change them, and where they end. A piece's end depends only on the PIECE_CHARS
 * characters after its start, so once the text runs past those it is settled: the tokens of the settled pieces, kept
 * as they come, plus countTextTokens of the rest is countTextTokens of the whole, each character counted about once
 * however often the whole is asked for.
 */
export function settledPieces(text: string, start: number): { pieces: string[]; end: number } {
  const pieces: string[] = [];
  let end = start;
  while (text.length - end > PIECE_CHARS) {
    const cut = pieceEnd(text, end);
    pieces.push(text.slice(end, cut));
    end = cut;
  }
  return { pieces, end };
}

export function countTextTokens(model: string, text: string): number {
  if (!text) return 0;
  const { countTokens } = encoding(model);
  if (text.length <= PIECE_CHARS) return countTokens(text, PLAIN);
  let n = 0;
  for (const piece of textPieces(text)) n += countTokens(piece, PLAIN);
  return n;
}

/**
 * The text that the first `maxTokens` tokens of a text hold (a file's text cut to the room it has in a
 * prompt), how many those are, and how many the whole had. Cut in the text itself, at a character: decoding
 * the kept tokens would not give it back (a token may end inside a character, and the tokenizer's decode
 * then writes U+FFFD, as it does for some runs of characters whole).
 */
export function truncateTokens(model: string, text: string, maxTokens: number): { text: string; tokens: number; total: number } {
  const { countTokens } = encoding(model);
  const room = Math.max(0, maxTokens);
  let kept = 0;
  let total = 0;
  let end = 0;
  let offset = 0;
  let cut = false;
  for (const piece of textPieces(text)) {
    const n = countTokens(piece, PLAIN);
    total += n;
    if (!cut && kept + n <= room) {
      kept += n;
      end = offset + piece.length;
    } else if (!cut) {
      const prefix = prefixWithin(piece, room - kept, countTokens);
      kept += prefix.tokens;
      end = offset + prefix.chars;
      cut = true;
    }
    offset += piece.length;
  }
  if (total <= maxTokens) return { text, tokens: total, total };
  return { text: text.slice(0, end), tokens: kept, total };
}

/** The longest start of `piece` (never ending inside a surrogate pair: clip) that counts `room` tokens or fewer, by halving. */
function prefixWithin(piece: string, room: number, countTokens: Encoding['countTokens']): { chars: number; tokens: number } {
  let best = { chars: 0, tokens: 0 };
  let low = 1;
  let high = piece.length;
  while (low <= high) {
    const mid = (low + high) >>> 1;
    const start = clip(piece, mid);
    const tokens = countTokens(start, PLAIN);
    if (tokens <= room) {
      if (start.length > best.chars) best = { chars: start.length, tokens };
      low = mid + 1;
    } else high = mid - 1;
  }
  return best;
}

/** The tokens of several texts together, each counted on its own. */
export const countTextsTokens = (model: string, texts: readonly string[]): number => texts.reduce((n, text) => n + countTextTokens(model, text), 0);
