import { threadTask } from '../../platform/thread-pool.ts';
import { countTextsTokens, truncateTokens } from './tokens.ts';

/** Texts counted together, or one text cut to `maxTokens`: as tokens.ts does it, with the model's encoding. */
export type TokenTask = { op: 'count'; model: string; texts: readonly string[] } | { op: 'truncate'; model: string; text: string; maxTokens: number };

/** A count; or, for a cut, how many characters of the text are kept (the text itself does not travel back), their tokens and the whole's. */
export type TokenResult = number | { chars: number; tokens: number; total: number };

/** A counting thread (see token-counter.ts): each loads an encoding on its first task that needs it, as tokens.ts does. */
export default threadTask((task: TokenTask): TokenResult => {
  if (task.op === 'count') return countTextsTokens(task.model, task.texts);
  const cut = truncateTokens(task.model, task.text, task.maxTokens);
  return { chars: cut.text.length, tokens: cut.tokens, total: cut.total };
});
