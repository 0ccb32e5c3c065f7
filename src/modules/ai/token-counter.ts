import { AppError } from '../../errors.ts';
import type { Logger } from '../../platform/observability/logger.ts';
import { createThreadPool, ThreadTimeout } from '../../platform/thread-pool.ts';
import type { TokenResult, TokenTask } from './token-count-worker.ts';
import { countTextsTokens, messageParts, promptParts, settledPieces, truncateTokens } from './tokens.ts';
import type { ChatMessage } from './types.ts';

/**
 * Characters counted on the server's own thread; more go to a counting thread. About a millisecond of prose
 * (measured: 4,000 characters of English took 0.4 ms counted again, 1.2 ms the first time), where a hop to a thread
 * (copying the text there, a message back) starts to cost less than it saves. Text without spaces costs more per
 * character (its pieces are merged whole: tokens.ts), up to about 10 ms for this many, the most one call holds the loop.
 */
export const INLINE_CHARS = 4_096;

export interface TokenCounter {
  /** The tokens of `texts` together, each counted as countTextTokens counts it. Rejects with `signal`'s reason when it aborts first. */
  count(model: string, texts: readonly string[], signal?: AbortSignal): Promise<number>;
  /** countMessageTokens's count of `m` (a chat message may hold megabytes): its texts counted as `count` counts them. */
  countMessage(model: string, m: ChatMessage): Promise<number>;
  /**
   * countPromptTokens's count of a prompt, with `extra` texts counted beside it (tool definitions, a response
   * format's schema, as their JSON), all in one task.
   */
  countPrompt(model: string, messages: ChatMessage[], extra?: readonly string[], signal?: AbortSignal): Promise<number>;
  /** A call's usage as Parley counts it where its provider reports none: its prompt and its output. */
  usage(model: string, messages: ChatMessage[], output: string, signal?: AbortSignal): Promise<{ inputTokens: number; outputTokens: number }>;
  /**
   * A count kept of a text that grows at its end (an answer as it streams): each call, given the text so far, is its
   * count, as countTextTokens counts it whole; the pieces that later text cannot change are counted once
   * (settledPieces), only the last few thousand characters again, not the square of the text's length.
   */
  running(model: string): (text: string, signal?: AbortSignal) => Promise<number>;
  /** truncateTokens's cut of `text`: its first `maxTokens` tokens, how many those are, and how many the whole has. */
  truncate(model: string, text: string, maxTokens: number): Promise<{ text: string; tokens: number; total: number }>;
  close(): Promise<void>;
}

/**
 * Token counts as tokens.ts makes them (same pieces, same encoding per model), the large ones on threads of their
 * own. Counting is linear in the text but not cheap: the 32 MiB an embeddings request may hold took over a second,
 * and a text of long runs without spaces far longer, during which no other request of the process would be answered.
 * Short texts are counted here, at once; longer ones (or many texts adding up to more, counted as one task) on at
 * most `threads` threads, the rest waiting their turn, each task stopped after `timeoutMs`. A thread loads an
 * encoding (about 20 MB) when its first task needs it.
 *
 * A count that fails (its thread could not start, or ran out of time) fails the caller's request with a 5xx
 * problem; the process goes on.
 */
export function createTokenCounter(opts: { threads: number; timeoutMs: number; logger?: Logger }): TokenCounter {
  const pool = createThreadPool<TokenTask, TokenResult>({ worker: new URL('./token-count-worker.ts', import.meta.url), threads: opts.threads, timeoutMs: opts.timeoutMs });

  async function run(task: TokenTask, chars: number, signal?: AbortSignal): Promise<TokenResult> {
    try {
      return await pool.run(task, signal);
    } catch (err) {
      if (signal?.aborted) throw err;
      if (err instanceof ThreadTimeout) {
        opts.logger?.warn({ timeoutMs: opts.timeoutMs, chars }, 'a token count ran past its time on its thread; it was stopped');
        throw new AppError(503, 'token_count_timeout', 'Service unavailable', `Counting the tokens of ${chars} characters took over ${opts.timeoutMs} ms; it was stopped`);
      }
      opts.logger?.error({ err, chars }, 'a token count failed on its thread');
      throw new AppError(500, 'token_count_failed', 'Internal server error', 'The tokens could not be counted: the counting thread failed', { cause: err });
    }
  }

  const counter: TokenCounter = {
    async count(model, texts, signal) {
      let chars = 0;
      for (const text of texts) chars += text.length;
      if (chars <= INLINE_CHARS) return countTextsTokens(model, texts);
      return (await run({ op: 'count', model, texts }, chars, signal)) as number;
    },
    async countMessage(model, m) {
      const texts: string[] = [];
      const fixed = messageParts(m, texts);
      return fixed + (await counter.count(model, texts));
    },
    async countPrompt(model, messages, extra = [], signal) {
      const { fixed, texts } = promptParts(messages);
      for (const text of extra) texts.push(text);
      return fixed + (await counter.count(model, texts, signal));
    },
    async usage(model, messages, output, signal) {
      return { inputTokens: await counter.countPrompt(model, messages, [], signal), outputTokens: await counter.count(model, [output], signal) };
    },
    running(model) {
      let settled = { end: 0, tokens: 0 };
      return async (text, signal) => {
        const { pieces, end } = settledPieces(text, settled.end);
        if (pieces.length) settled = { end, tokens: settled.tokens + (await counter.count(model, pieces, signal)) };
        return settled.tokens + (await counter.count(model, [text.slice(settled.end)], signal));
      };
    },
    async truncate(model, text, maxTokens) {
      if (text.length <= INLINE_CHARS) return truncateTokens(model, text, maxTokens);
      const cut = (await run({ op: 'truncate', model, text, maxTokens }, text.length)) as Exclude<TokenResult, number>;
      return { text: cut.chars < text.length ? text.slice(0, cut.chars) : text, tokens: cut.tokens, total: cut.total };
    },
    close: () => pool.close(),
  };
  return counter;
}
