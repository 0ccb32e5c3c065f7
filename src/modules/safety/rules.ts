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

/**
 * Why a pattern could take exponential time, or undefined. JavaScript's regex engine backtracks:
 * a repeated group that itself repeats or alternates (`(a+)+`, `(a|a)*`) can take longer than the
 * age of the universe on 30 characters. Those shapes, and backreferences, are refused when the rule
 * is saved; what is left runs in polynomial time on text no longer than the input cap.
 */
export function unsafeShape(pattern: string): string | undefined {
  // One entry per open group: does it hold a quantifier or an alternation?
  const groups: Array<{ risky: boolean }> = [{ risky: false }];
  let lastGroupRisky = false; // the atom just closed was a group holding a quantifier or alternation
  let inClass = false;
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i]!;
    if (c === '\\') {
      const next = pattern[i + 1] ?? '';
      if (!inClass && (/[1-9]/.test(next) || next === 'k')) return 'backreferences are not allowed';
      i++;
      lastGroupRisky = false;
      continue;
    }
    if (inClass) {
      if (c === ']') inClass = false;
      continue;
    }
    if (c === '[') {
      inClass = true;
      lastGroupRisky = false;
      continue;
    }
    if (c === '(') {
      groups.push({ risky: false });
      lastGroupRisky = false;
      // Skip the group's kind: (?: (?= (?! (?<= (?<! (?<name>
      if (pattern[i + 1] === '?') {
        const kind = /^\(\?(?:[:=!]|<[=!]|<[^>]*>)/.exec(pattern.slice(i));
        if (kind) i += kind[0].length - 1;
      }
      continue;
    }
    if (c === ')') {
      const closed = groups.length > 1 ? groups.pop()! : { risky: false };
      // What a group holds, its parent holds: ((a+))+ is (a+)+.
      if (closed.risky) groups[groups.length - 1]!.risky = true;
      lastGroupRisky = closed.risky;
      continue;
    }
    const top = groups[groups.length - 1]!;
    if (c === '|') {
      top.risky = true;
      lastGroupRisky = false;
      continue;
    }
    const bounds = c === '{' ? /^\{(\d+)(,(\d*))?\}/.exec(pattern.slice(i)) : null;
    if (c === '*' || c === '+' || c === '?' || bounds) {
      const max = bounds ? (bounds[2] === undefined ? Number(bounds[1]) : bounds[3] ? Number(bounds[3]) : Infinity) : c === '?' ? 1 : Infinity;
      if (max > 1 && lastGroupRisky) return 'a repeated group may not itself repeat or alternate (catastrophic backtracking)';
      top.risky = true;
      if (bounds) i += bounds[0].length - 1;
      lastGroupRisky = false;
      continue;
    }
    lastGroupRisky = false;
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

/** What a rule set finds in a text: the first term or pattern that matches, by its place in the set. */
export function matchRules(text: string, rules: Pick<TextRules, 'blockedTerms' | 'patterns'>): { category: 'blocked_term' | 'blocked_pattern'; rule: string } | undefined {
  if (!rules.blockedTerms.length && !rules.patterns.length) return undefined;
  const normalized = normalizeText(text);
  const term = findTerm(normalized.toLowerCase(), rules.blockedTerms);
  if (term !== undefined) return { category: 'blocked_term', rule: `blockedTerms[${rules.blockedTerms.indexOf(term)}]` };
  for (const [index, pattern] of rules.patterns.entries()) {
    if (compilePattern(pattern).test(normalized)) return { category: 'blocked_pattern', rule: `patterns[${index}]` };
  }
  return undefined;
}
