import { ValidationError } from '../../errors.ts';

/** Limits on the rules themselves: a rule set is checked on every turn, so its size is bounded. */
export const RULE_LIMITS = { terms: 500, termChars: 100, patterns: 50, patternChars: 200 } as const;

/** Blocked terms, patterns and a length cap: the deployment's (SAFETY_RULES) and each project's. */
export interface TextRules {
  blockedTerms: string[];
  patterns: string[];
  maxInputChars: number | null;
}

/**
 * Characters that render as nothing: zero-width space, non-joiner and joiner, word joiner, BOM, soft
 * hyphen, Mongolian vowel separator, and the invisible math operators. Put between the letters of a
 * blocked word, they would hide it from a plain comparison.
 */
const INVISIBLE = /[\u00AD\u180E\u200B-\u200F\u202A-\u202E\u2060-\u2064\u2066-\u2069\uFEFF]/g;

/**
 * What terms are compared on: NFKC (fullwidth `ｂａｄ` and ligatures become `bad`), invisible
 * characters removed, lower case. Patterns run on the same text before lower-casing (they have the `i` flag).
 */
export const normalizeText = (text: string) => text.normalize('NFKC').replace(INVISIBLE, '');
export const normalizeTerm = (term: string) => normalizeText(term).toLowerCase().trim();

const WORD = /[\p{L}\p{N}\p{M}]/u;

/**
 * The first blocked term found in `text` as a whole word (or words): `ass` does not match `class`.
 * A term that starts or ends with a non-word character (`f*ck`, `.exe`) matches at that edge anyway.
 */
export function findTerm(normalizedLower: string, terms: readonly string[]): string | undefined {
  for (const term of terms) {
    if (!term) continue;
    let at = normalizedLower.indexOf(term);
    while (at !== -1) {
      const before = normalizedLower[at - 1];
      const after = normalizedLower[at + term.length];
      const startOk = before === undefined || !WORD.test(before) || !WORD.test(term[0]!);
      const endOk = after === undefined || !WORD.test(after) || !WORD.test(term[term.length - 1]!);
      if (startOk && endOk) return term;
      at = normalizedLower.indexOf(term, at + 1);
    }
  }
  return undefined;
}

/** A repeat counts as long when unbounded (`*`, `+`, `{n,}`) or with this many choices or more (`{0,10}`). */
const LONG_REPEAT = 10;
/** The most ways a run of short repeats that can match the same characters may split a text (`a?a?` splits it 4 ways). */
const MAX_SPLITS = 100;

/**
 * Where the class escapes and `.` change from matching to not: the first character in and the first
 * out of each of their ranges (spaces and line breaks, `_`, letters that fold into ASCII under `iu`).
 */
const EDGES: Record<string, string> = {
  d: '0:',
  w: '0:A[_`a{\u017F\u0180\u212A\u212B',
  s: '\t\u000E !\u00A0\u00A1\u1680\u1681\u2000\u200B\u2028\u202A\u202F\u2030\u205F\u2060\u3000\u3001\uFEFF\uFF00',
  '.': '\n\u000B\r\u000E\u2028\u202A',
};

/**
 * What one atom (a character, an escape, a class, `.`) matches, as a test, and the characters worth
 * trying on it: the edges of its ranges, its own characters and the one after each, in either case.
 * Two atoms match a common character only if they match a common edge (where either changes), so
 * trying both atoms' edges decides it. `any` where the edges are not known (`\p{…}`).
 */
type CharSet = { any: true } | { any: false; re: RegExp; probes: string[] };

function charSet(src: string): CharSet {
  if (/\\[pP]/.test(src)) return { any: true };
  const chars = [
    '\0',
    ...src,
    ...[...src.matchAll(/\\u\{([0-9a-f]+)\}|\\u([0-9a-f]{4})|\\x([0-9a-f]{2})/giu)].map((m) => String.fromCodePoint(parseInt(m[1] ?? m[2] ?? m[3]!, 16))),
    ...[...src.matchAll(/\\([dws])/giu)].flatMap((m) => [...EDGES[m[1]!.toLowerCase()]!]),
    ...(src === '.' ? EDGES['.']! : ''),
  ];
  const probes = new Set<string>();
  for (const ch of chars) {
    const code = ch.codePointAt(0)!;
    for (const probe of [ch, ch.toLowerCase(), ch.toUpperCase(), code < 0x10ffff ? String.fromCodePoint(code + 1) : ch]) probes.add(probe);
  }
  return { any: false, re: new RegExp(`^(?:${src})$`, 'iu'), probes: [...probes] };
}

/** Whether one character can match both: a member of `a` and a member of `b` (a group is the union of its atoms). */
const canShare = (a: CharSet[], b: CharSet[]) =>
  a.some((x) => b.some((y) => x.any || y.any || x.probes.some((c) => y.re.test(c) && x.re.test(c)) || y.probes.some((c) => x.re.test(c) && y.re.test(c))));

/**
 * A repeat still open in a run: its atom, how many long repeats and how many ways of splitting its run
 * leads to it, and the required atoms since it that it can match too (`guards`: one that a later repeat
 * cannot match ends the run between them, as `.` does in `[\w.]+\.[a-z]+`).
 */
interface OpenRepeat {
  set: CharSet[];
  long: number;
  splits: number;
  guards: CharSet[][];
}

/** The open repeats after an atom matched `min` to `max` times, or why the pattern is refused. */
function advance(run: OpenRepeat[], set: CharSet[], min: number, max: number): OpenRepeat[] | string {
  let added: OpenRepeat | undefined;
  if (max > min) {
    const meets = run.filter((r) => canShare(r.set, set) && r.guards.every((g) => canShare(g, set)));
    const long = max - min >= LONG_REPEAT;
    added = { set, long: (long ? 1 : 0) + Math.max(0, ...meets.map((r) => r.long)), splits: (long ? 1 : max - min + 1) * Math.max(1, ...meets.map((r) => r.splits)), guards: [] };
    if (added.long > 1) return 'two long repeats that can match the same characters follow one another, as in \\d*\\d* (slow backtracking)';
    if (added.splits > MAX_SPLITS) return 'too many repeats that can match the same characters follow one another, as in a?a?a?a?a?a?a? (slow backtracking)';
  }
  // An atom that must match ends every open run it cannot match, and guards those it can; an optional one does neither.
  const kept = min === 0 ? run : run.filter((r) => canShare(r.set, set)).map((r) => ({ ...r, guards: [...r.guards, set] }));
  return added ? [...kept, added] : kept;
}

/** The quantifier at `i`: how often the atom before it matches, and its length (a lazy `?` included); none is once. */
function quantifierAt(pattern: string, i: number): { min: number; max: number; length: number } {
  const c = pattern[i];
  let q: { min: number; max: number; length: number };
  if (c === '*') q = { min: 0, max: Infinity, length: 1 };
  else if (c === '+') q = { min: 1, max: Infinity, length: 1 };
  else if (c === '?') q = { min: 0, max: 1, length: 1 };
  else {
    const bounds = c === '{' ? /^\{(\d+)(,(\d*))?\}/.exec(pattern.slice(i)) : null;
    if (!bounds) return { min: 1, max: 1, length: 0 };
    q = { min: Number(bounds[1]), max: bounds[2] === undefined ? Number(bounds[1]) : bounds[3] ? Number(bounds[3]) : Infinity, length: bounds[0].length };
  }
  // Lazy tries the same choices in another order: no faster when nothing matches.
  if (pattern[i + q.length] === '?') q.length++;
  return q;
}

/** The length of the atom at `i` (an escape, a class, one character), or 0 for what matches no character (`^`, `$`, `\b`). */
function atomLength(pattern: string, i: number): number {
  const c = pattern[i]!;
  if (c === '^' || c === '$') return 0;
  if (c === '[') {
    let j = i + 1;
    while (j < pattern.length && pattern[j] !== ']') j += pattern[j] === '\\' ? 2 : 1;
    return j + 1 - i;
  }
  if (c !== '\\') return String.fromCodePoint(pattern.codePointAt(i)!).length;
  const next = pattern[i + 1] ?? '';
  if (next === 'b' || next === 'B') return 0;
  const escape = /^\\(?:[pPu]\{[^}]*\}|u[0-9a-fA-F]{4}|x[0-9a-fA-F]{2}|c[a-zA-Z]|[^])/u.exec(pattern.slice(i));
  return escape ? escape[0].length : 1;
}

/** A group being read: the run at its start, at the end of each alternative, and now; its atoms; whether it repeats or alternates inside. */
interface Group {
  entry: OpenRepeat[];
  ends: OpenRepeat[][];
  run: OpenRepeat[];
  atoms: CharSet[];
  risky: boolean;
  lookaround: boolean;
}

/**
 * Why a pattern could take exponential or high polynomial time, or undefined (for a pattern that
 * compiles with `iu`). JavaScript's regex engine backtracks: a repeated group that itself repeats or
 * alternates (`(a+)+`, `(a|a)*`) can take longer than the age of the universe on 30 characters, and
 * so can repeats that can match the same characters one after the other (`\d*\d*\d*\d*\d*x`), since
 * the engine tries every way of sharing a text between them. Those shapes, and backreferences, are
 * refused when the rule is saved. Two repeats are apart when something between them must match a
 * character that one of them cannot (`\d+-\d+`, `[\w.]+\.[a-z]+`); an optional atom or a group that
 * may be skipped does not part them. What is left runs in polynomial time of a low degree on text no
 * longer than the input cap.
 */
export function unsafeShape(pattern: string): string | undefined {
  const groups: Group[] = [{ entry: [], ends: [], run: [], atoms: [], risky: false, lookaround: false }];
  for (let i = 0; i < pattern.length; ) {
    const group = groups[groups.length - 1]!;
    const c = pattern[i]!;
    if (c === '\\' && (/[1-9]/.test(pattern[i + 1] ?? '') || pattern[i + 1] === 'k')) return 'backreferences are not allowed';
    if (c === '|') {
      group.risky = true;
      group.ends.push(group.run);
      group.run = group.entry;
      i++;
      continue;
    }
    if (c === '(') {
      // The group's kind: (?: (?= (?! (?<= (?<! (?<name> (?i:
      const kind = /^\(\?(?:[:=!]|<[=!]|<[^>]*>|[a-z-]*:)/.exec(pattern.slice(i))?.[0] ?? '(';
      // A lookaround's repeats do not meet the text's: it matches on its own and is not tried again.
      const lookaround = /^\(\?<?[=!]$/.test(kind);
      const run = lookaround ? [] : group.run;
      groups.push({ entry: run, ends: [], run, atoms: [], risky: false, lookaround });
      i += kind.length;
      continue;
    }
    if (c === ')') {
      const closed = groups.length > 1 ? groups.pop()! : group;
      const parent = groups[groups.length - 1]!;
      const q = quantifierAt(pattern, i + 1);
      i += 1 + q.length;
      // What a group holds, its parent holds: ((a+))+ is (a+)+.
      if (closed.risky || q.length) parent.risky = true;
      if (q.max > 1 && closed.risky) return 'a repeated group may not itself repeat or alternate (catastrophic backtracking)';
      if (closed.lookaround) continue;
      const ends = [...new Set([...closed.ends.flat(), ...closed.run])];
      if (q.max === 0) continue;
      if (q.max === q.min) parent.run = ends;
      else if (closed.risky) parent.run = [...new Set([...closed.entry, ...ends])];
      else {
        // A repeated group of plain atoms, `(ab)+`: one repeat of any of its characters.
        const next = advance(closed.entry, closed.atoms, closed.atoms.length ? q.min : 0, q.max);
        if (typeof next === 'string') return next;
        parent.run = next;
      }
      parent.atoms.push(...closed.atoms);
      continue;
    }
    const length = atomLength(pattern, i);
    if (!length) {
      i += c === '\\' ? 2 : 1;
      continue;
    }
    const set = [charSet(pattern.slice(i, i + length))];
    const q = quantifierAt(pattern, i + length);
    i += length + q.length;
    if (q.length) group.risky = true;
    const next = advance(group.run, set, q.min, q.max);
    if (typeof next === 'string') return next;
    group.run = next;
    group.atoms.push(...set);
  }
  return undefined;
}

/** Patterns compile once per process: a turn reuses them. */
const compiled = new Map<string, RegExp>();
export function compilePattern(pattern: string): RegExp {
  let re = compiled.get(pattern);
  if (!re) {
    re = new RegExp(pattern, 'iu');
    if (compiled.size >= 10_000) compiled.clear();
    compiled.set(pattern, re);
  }
  return re;
}

/**
 * Checks a rule set as someone wrote it (a project's PUT, SAFETY_RULES): every pattern compiles with the
 * `iu` flags it runs with and has a safe shape; counts and lengths within RULE_LIMITS. Returns it with the
 * terms normalized and deduplicated. Throws a 400 naming the first bad entry.
 */
export function validateRules(rules: TextRules, where = ''): TextRules {
  const bad = (detail: string, extra: Record<string, unknown> = {}) => ValidationError(`${where}${detail}`, 'invalid_safety_rules', extra);
  if (rules.blockedTerms.length > RULE_LIMITS.terms) throw bad(`at most ${RULE_LIMITS.terms} blocked terms`);
  if (rules.patterns.length > RULE_LIMITS.patterns) throw bad(`at most ${RULE_LIMITS.patterns} patterns`);
  const terms = [...new Set(rules.blockedTerms.map(normalizeTerm))];
  for (const [index, term] of terms.entries()) {
    if (!term) throw bad('a blocked term is empty once normalized', { field: 'blockedTerms', index });
    if (term.length > RULE_LIMITS.termChars) throw bad(`blocked terms are at most ${RULE_LIMITS.termChars} characters`, { field: 'blockedTerms', index });
  }
  for (const [index, pattern] of rules.patterns.entries()) {
    if (!pattern || pattern.length > RULE_LIMITS.patternChars) throw bad(`patterns are 1 to ${RULE_LIMITS.patternChars} characters`, { field: 'patterns', index });
    try {
      new RegExp(pattern, 'iu');
    } catch (err) {
      throw bad(`patterns[${index}] is not a valid regular expression: ${(err as Error).message}`, { field: 'patterns', index });
    }
    const unsafe = unsafeShape(pattern);
    if (unsafe) throw bad(`patterns[${index}] is refused: ${unsafe}`, { field: 'patterns', index });
  }
  return { blockedTerms: terms, patterns: [...new Set(rules.patterns)], maxInputChars: rules.maxInputChars };
}
