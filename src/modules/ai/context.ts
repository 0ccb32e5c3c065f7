import type { TokenCounter } from './token-counter.ts';
import { MESSAGE_OVERHEAD, REPLY_PRIMING } from './tokens.ts';
import type { ChatMessage, ModelInfo } from './types.ts';

/** Assumed when the catalog does not know a model's window: small enough for most local models. */
export const DEFAULT_CONTEXT_WINDOW = 8192;

export interface ContextInput {
  model: Pick<ModelInfo, 'model' | 'contextWindow'>;
  system?: string | null;
  /** The conversation, oldest first, ending with the latest user message (and any tool round after it). */
  history: ChatMessage[];
  /** Tokens kept free for the reply. */
  replyBudget: number;
  /** Used when the model's window is unknown. */
  fallbackContextWindow?: number;
  /** Tokens already known for some of `history` (counted when they were stored): used instead of counting those again. */
  counted?: ReadonlyMap<ChatMessage, number>;
  /** Counts the rest: a message may hold megabytes, counted on a thread (token-counter.ts). */
  tokens: Pick<TokenCounter, 'count' | 'countMessage'>;
}

/**
 * The messages to send: the system prompt, then as much recent history as
 * fits the model's context window minus the reply budget. History is dropped
 * a whole turn at a time (a user message and the replies and tool rounds
 * after it), oldest first, so no assistant reply or tool result is left
 * without what it answers. The latest user turn is always kept, even when
 * it alone is too big: the provider's own error says so better than a
 * silently emptied prompt.
 */
export async function buildContext(input: ContextInput): Promise<ChatMessage[]> {
  const modelName = input.model.model;
  const window = input.model.contextWindow ?? input.fallbackContextWindow ?? DEFAULT_CONTEXT_WINDOW;
  const system: ChatMessage[] = input.system ? [{ role: 'system', content: input.system }] : [];
  const systemTokens = input.system ? MESSAGE_OVERHEAD + (await input.tokens.count(modelName, [input.system])) : 0;
  let budget = window - input.replyBudget - REPLY_PRIMING - systemTokens;

  const turns = splitTurns(input.history);
  const kept: ChatMessage[][] = [];
  for (let i = turns.length - 1; i >= 0; i--) {
    const turn = turns[i]!;
    // Most messages are counted inline (or were when stored); a long one on a thread.
    let cost = 0;
    for (const m of turn) cost += input.counted?.get(m) ?? (await input.tokens.countMessage(modelName, m));
    const isLatest = i === turns.length - 1;
    // Stop at the first turn that does not fit: skipping it to keep older ones would leave a gap in the conversation.
    if (!isLatest && cost > budget) break;
    kept.unshift(turn);
    budget -= cost;
  }
  return [...system, ...kept.flat()];
}

/**
 * Turns start at each user message. What comes before the first user message
 * is the end of a turn cut where the history was read (a reply, or a tool
 * result whose call was left behind): it is dropped, never sent without its
 * question. Only a history with no user message at all is sent as one turn.
 */
function splitTurns(history: ChatMessage[]): ChatMessage[][] {
  const first = history.findIndex((m) => m.role === 'user');
  if (first < 0) return history.length ? [history] : [];
  const turns: ChatMessage[][] = [];
  for (const m of history.slice(first)) {
    if (m.role === 'user') turns.push([m]);
    else turns.at(-1)!.push(m);
  }
  return turns;
}
