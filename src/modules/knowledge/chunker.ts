import { createHash } from 'node:crypto';

/** A passage of a text: a contiguous slice of it, so offsets point back into the source for citations and highlights. */
export interface Chunk {
  index: number;
  text: string;
  /** Offsets into the source: `source.slice(start, end) === text`. */
  start: number;
  end: number;
  /** The Markdown headings the passage sits under, outermost first. */
  headings: string[];
  tokens: number;
  /** SHA-256 of the text: an edit re-embeds only the passages whose hash changed. */
  hash: string;
}

export interface ChunkOptions {
  /** Most tokens in a passage. */
  maxTokens: number;
  /** Tokens of the previous passage repeated at the start of the next, so a sentence cut between two is whole in one. */
  overlapTokens: number;
  /** The embedding model's token count. */
  count: (text: string) => number;
}

/** A smallest piece the packer moves: a sentence, a code block, a heading, or part of one too long to keep whole. */
interface Unit {
  start: number;
  end: number;
  tokens: number;
  /** Set on a heading line: its level (1–6) and title. */
  heading?: { level: number; title: string };
  /** A fenced code block: kept whole when it fits. */
  code?: boolean;
}

const HEADING = /^(#{1,6})[ \t]+(.+?)[ \t#]*$/;
const FENCE = /^(```|~~~)/;

/**
 * Splits a text into passages of at most `maxTokens`, by its structure first:
 * Markdown headings (levels 1–3) start a new passage, code blocks stay whole
 * where they fit, prose is packed by whole sentences, and only what does not
 * fit is cut, at spaces, then anywhere. Consecutive passages within a section
 * overlap by whole sentences, up to `overlapTokens`.
 */
export function chunkText(source: string, opts: ChunkOptions): Chunk[] {
  if (opts.maxTokens < 1 || opts.overlapTokens < 0 || opts.overlapTokens >= opts.maxTokens) throw new Error('chunkText: need 0 <= overlapTokens < maxTokens');
  const units = blocksOf(source).flatMap((b) => fit(source, b, opts));
  const chunks: Chunk[] = [];
  const trail: Array<{ level: number; title: string }> = [];
  // Units whose headings are in `trail`: passages only move forward, so each unit is looked at once.
  let scanned = 0;
  let first = 0;
  while (first < units.length) {
    // The headings in force where this passage starts.
    for (; scanned <= first; scanned++) {
      const h = units[scanned]!.heading;
      if (!h) continue;
      while (trail.length && trail.at(-1)!.level >= h.level) trail.pop();
      trail.push(h);
    }
    const headings = trail.map((h) => h.title);
    let last = first;
    let tokens = units[first]!.tokens;
    while (last + 1 < units.length) {
      const next = units[last + 1]!;
      if (next.heading && next.heading.level <= 3) break;
      if (tokens + next.tokens > opts.maxTokens) break;
      tokens += next.tokens;
      last++;
    }
    const start = units[first]!.start;
    // Token counts of pieces do not quite add up (merges across a boundary): trust the whole's (a unit alone is counted already).
    const whole = (to: number) => (to > first ? opts.count(source.slice(start, units[to]!.end)) : units[first]!.tokens);
    tokens = whole(last);
    while (last > first && tokens > opts.maxTokens) tokens = whole(--last);
    const end = units[last]!.end;
    const text = source.slice(start, end);
    chunks.push({ index: chunks.length, text, start, end, headings, tokens, hash: createHash('sha256').update(text).digest('hex') });
    if (last + 1 >= units.length) break;
    // The next passage repeats the tail of this one, unless a heading starts a new section there.
    let next = last + 1;
    if (!(units[next]!.heading && units[next]!.heading!.level <= 3)) {
      let carried = 0;
      while (next - 1 > first && !units[next - 1]!.heading && carried + units[next - 1]!.tokens <= opts.overlapTokens && carried + units[next - 1]!.tokens + units[last + 1]!.tokens <= opts.maxTokens) {
        carried += units[next - 1]!.tokens;
        next--;
      }
    }
    first = next;
  }
  return chunks;
}

/** Paragraphs (split at blank lines), fenced code blocks kept whole, heading lines on their own; spans without surrounding blank lines. */
function blocksOf(source: string): Array<Omit<Unit, 'tokens'>> {
  const blocks: Array<Omit<Unit, 'tokens'>> = [];
  let blockStart = -1;
  let blockEnd = -1;
  let fence: string | null = null;
  const close = (code = false) => {
    if (blockStart >= 0) blocks.push({ start: blockStart, end: blockEnd, ...(code ? { code } : {}) });
    blockStart = -1;
  };
  let pos = 0;
  while (pos <= source.length) {
    const nl = source.indexOf('\n', pos);
    const lineEnd = nl === -1 ? source.length : nl;
    const line = source.slice(pos, lineEnd);
    const trimmed = line.trim();
    if (fence) {
      blockEnd = lineEnd;
      if (trimmed.startsWith(fence)) {
        fence = null;
        close(true);
      }
    } else if (FENCE.test(trimmed)) {
      close();
      fence = trimmed.slice(0, 3);
      blockStart = pos;
      blockEnd = lineEnd;
    } else if (!trimmed) {
      close();
    } else {
      const h = HEADING.exec(trimmed);
      if (h) {
        close();
        blocks.push({ start: pos, end: lineEnd, heading: { level: h[1]!.length, title: h[2]!.trim() } });
      } else {
        if (blockStart < 0) blockStart = pos;
        blockEnd = lineEnd;
      }
    }
    if (nl === -1) break;
    pos = nl + 1;
  }
  close(fence !== null);
  return blocks;
}

/**
 * A block as units of at most maxTokens: a heading or code block whole when it fits, prose as its
 * sentences; what is still too long is cut at spaces (packed back up to the limit), then anywhere.
 */
function fit(source: string, block: Omit<Unit, 'tokens'>, opts: ChunkOptions, bySentence = !block.code && !block.heading): Unit[] {
  if (bySentence) {
    const sentences = cutAt(source, block, SENTENCE_END);
    if (sentences.length > 1) return sentences.flatMap((s) => fit(source, s, opts, false));
  }
  const tokens = opts.count(source.slice(block.start, block.end));
  if (tokens <= opts.maxTokens) return [{ ...block, tokens }];
  const words = cutAt(source, block, /\s+/g);
  if (words.length > 1) return pack(source, words, opts).flatMap((p) => (p.tokens <= opts.maxTokens ? [p] : fit(source, p, opts, false)));
  // No boundary left (one enormous word): halve it.
  const mid = block.start + Math.ceil((block.end - block.start) / 2);
  return [...fit(source, { start: block.start, end: mid }, opts, false), ...fit(source, { start: mid, end: block.end }, opts, false)];
}

/** A sentence ends at . ! ? (or their CJK forms) followed by space. */
const SENTENCE_END = /(?<=[.!?\u3002\uFF01\uFF1F])\s+/g;

/** Spans of the block between matches of `boundary` (the matched whitespace in neither). */
function cutAt(source: string, block: Omit<Unit, 'tokens'>, boundary: RegExp): Array<{ start: number; end: number }> {
  const text = source.slice(block.start, block.end);
  const spans: Array<{ start: number; end: number }> = [];
  let from = 0;
  for (const m of text.matchAll(boundary)) {
    const next = m.index! + m[0].length;
    if (next >= text.length) break;
    if (m.index! > from) spans.push({ start: block.start + from, end: block.start + m.index! });
    from = next;
  }
  spans.push({ start: block.start + from, end: block.end });
  return spans;
}

/**
 * Consecutive spans joined while the whole fits (so words are not one unit each); a span alone too big stays for `fit` to cut.
 * Counting the join again at every span would cost the square of a paragraph's length: where each join ends is searched
 * for instead, from the last join's length, so a join costs a few counts of about its own length.
 */
function pack(source: string, spans: Array<{ start: number; end: number }>, opts: ChunkOptions): Unit[] {
  const out: Unit[] = [];
  let stride = 1;
  for (let first = 0; first < spans.length; ) {
    const start = spans[first]!.start;
    let tokens = 0;
    // Each end that fits is past the ones before, so `tokens` is left at the count of the end found.
    const fits = (last: number) => {
      const whole = opts.count(source.slice(start, spans[last]!.end));
      if (whole <= opts.maxTokens) tokens = whole;
      return whole <= opts.maxTokens;
    };
    const last = lastFitting(first, spans.length, first + stride - 1, fits);
    if (last === first) tokens = opts.count(source.slice(start, spans[first]!.end));
    out.push({ start, end: spans[last]!.end, tokens });
    stride = last - first + 1;
    first = last + 1;
  }
  return out;
}

/**
 * The largest index in [from, to) for which `fits` holds, `from` when none after it does (`fits(from)` is not asked),
 * for a `fits` that holds up to some index and not beyond. Gallops out from `guess` (steps doubling) until the
 * end is bracketed, then halves: a good guess costs two calls, a poor one a few more, never one per index.
 */
function lastFitting(from: number, to: number, guess: number, fits: (i: number) => boolean): number {
  if (to - from <= 1) return from;
  let lo = from;
  let hi = to;
  const probe = Math.min(Math.max(guess, from + 1), to - 1);
  const rising = fits(probe);
  if (rising) lo = probe;
  else hi = probe;
  for (let step = 1; hi - lo > 1; step *= 2) {
    const next = rising ? Math.min(lo + step, hi - 1) : Math.max(hi - step, lo + 1);
    if (fits(next)) {
      lo = next;
      if (!rising) break;
    } else {
      hi = next;
      if (rising) break;
    }
  }
  while (hi - lo > 1) {
    const mid = (lo + hi) >>> 1;
    if (fits(mid)) lo = mid;
    else hi = mid;
  }
  return lo;
}
