import { threadTask } from '../../platform/thread-pool.ts';
import { compilePattern } from './rules.ts';

export interface PatternSearch {
  text: string;
  patterns: readonly string[];
}

/** The patterns' thread (see pattern-matcher.ts): the index of the first pattern that matches the text (-1: none). */
export default threadTask(({ text, patterns }: PatternSearch) => patterns.findIndex((pattern) => compilePattern(pattern).test(text)));
