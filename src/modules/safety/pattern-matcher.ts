import type { Logger } from '../../platform/observability/logger.ts';
import { createThreadPool, ThreadTimeout } from '../../platform/thread-pool.ts';
import type { PatternSearch } from './pattern-worker.ts';

/** The index of the first pattern that matched (-1: none), or `timeout` when the search ran past its time. */
export type PatternVerdict = number | 'timeout';

export interface PatternMatcher {
  /** The first of `patterns` (run with `iu`) that matches `text`, searched off the event loop within the time allowed. */
  firstMatch(text: string, patterns: readonly string[]): Promise<PatternVerdict>;
  close(): Promise<void>;
}

/**
 * Runs safety patterns on a thread of their own, one search at a time, each stopped after `timeoutMs`.
 * JavaScript's engine backtracks: the shape check at save time (rules.ts) rules out the exponential
 * patterns, but an unanchored search is still tried from every position, so `\d*x` or `\d+-\d+` on
 * 100,000 digits takes seconds to minutes. On the server's own thread that would stop every request; here
 * only this search waits, and past its time the thread is ended (a new one starts for the next search).
 * The clock starts when the thread takes the search, not while it waits its turn (thread-pool.ts).
 */
export function createPatternMatcher(opts: { timeoutMs: number; logger: Logger }): PatternMatcher {
  const pool = createThreadPool<PatternSearch, number>({ worker: new URL('./pattern-worker.ts', import.meta.url), threads: 1, timeoutMs: opts.timeoutMs });
  return {
    async firstMatch(text, patterns) {
      if (!patterns.length) return -1;
      try {
        return await pool.run({ text, patterns });
      } catch (err) {
        if (!(err instanceof ThreadTimeout)) throw err;
        opts.logger.warn({ timeoutMs: opts.timeoutMs, chars: text.length, patterns: patterns.length }, 'safety patterns ran past their time on a text; the search was stopped');
        return 'timeout';
      }
    },
    close: () => pool.close(),
  };
}
