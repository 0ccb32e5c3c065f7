import { countTokens as countO200k } from 'gpt-tokenizer';
import { countTokens as countCl100k } from 'gpt-tokenizer/encoding/cl100k_base';
import type { ChatMessage } from './types.ts';

/** Special-token strings in user text are plain text here; the default would throw on them. */
const PLAIN = { disallowedSpecial: new Set<string>() };

/** Older OpenAI models use cl100k_base; everything else is counted with o200k_base, exact for current OpenAI models and a fair estimate for others. */
const CL100K = /^(gpt-4(?!o|\.\d)|gpt-3\.5)/;

export function countTextTokens(model: string, text: string): number {
  if (!text) return 0;
  return CL100K.test(model) ? countCl100k(text, PLAIN) : countO200k(text, PLAIN);
}

/**
 * Tokens a message takes in a prompt: its text, the role and framing tokens
 * chat formats wrap it in (OpenAI's documented 3 per message), and any tool
 * calls it carries.
 */
export const MESSAGE_OVERHEAD = 3;
/** Every reply is primed with a few tokens (`<|start|>assistant<|message|>`). */
export const REPLY_PRIMING = 3;

export function countMessageTokens(model: string, m: ChatMessage): number {
  let n = MESSAGE_OVERHEAD + countTextTokens(model, m.content);
  for (const call of m.toolCalls ?? []) n += MESSAGE_OVERHEAD + countTextTokens(model, call.name) + countTextTokens(model, call.arguments);
  return n;
}

export function countPromptTokens(model: string, messages: ChatMessage[]): number {
  return REPLY_PRIMING + messages.reduce((sum, m) => sum + countMessageTokens(model, m), 0);
}
