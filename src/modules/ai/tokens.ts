import { countTextsTokens } from '../../platform/tokenizer.ts';
import type { ChatMessage } from './types.ts';

// The text-level tokenizer is the platform's; messages and prompts are counted here.
export { countTextTokens, countTextsTokens, encodingOf, PIECE_CHARS, settledPieces, textPieces, truncateTokens } from '../../platform/tokenizer.ts';

/** A token count a provider reported, if it is one (a whole number of zero or more); undefined for anything else. */
export const tokenCount = (n: unknown): number | undefined => (typeof n === 'number' && Number.isSafeInteger(n) && n >= 0 ? n : undefined);

/** What one image is counted as before the provider reports usage: about what OpenAI and Anthropic charge for a mid-sized image. */
export const IMAGE_TOKENS = 1_000;

/**
 * Tokens a message takes in a prompt: its text, the role and framing tokens
 * chat formats wrap it in (OpenAI's documented 3 per message), and any tool
 * calls it carries.
 */
export const MESSAGE_OVERHEAD = 3;
/** Every reply is primed with a few tokens (`<|start|>assistant<|message|>`). */
export const REPLY_PRIMING = 3;

/** The texts of `m` to count (added to `texts`), and the tokens it takes besides them (framing, images). */
export function messageParts(m: ChatMessage, texts: string[]): number {
  let fixed = MESSAGE_OVERHEAD;
  texts.push(m.content);
  for (const part of m.parts ?? []) if (part.type === 'image') fixed += IMAGE_TOKENS;
  for (const call of m.toolCalls ?? []) {
    fixed += MESSAGE_OVERHEAD;
    texts.push(call.name, call.arguments);
  }
  return fixed;
}

/**
 * A prompt as the texts to count and the tokens it takes besides them: `fixed` plus the texts' count is
 * countPromptTokens (a text's count does not depend on the others), so the texts can be counted elsewhere (on a
 * thread: token-counter.ts).
 */
export function promptParts(messages: ChatMessage[]): { fixed: number; texts: string[] } {
  const texts: string[] = [];
  let fixed = REPLY_PRIMING;
  for (const m of messages) fixed += messageParts(m, texts);
  return { fixed, texts };
}

export function countMessageTokens(model: string, m: ChatMessage): number {
  const texts: string[] = [];
  const fixed = messageParts(m, texts);
  return fixed + countTextsTokens(model, texts);
}

export function countPromptTokens(model: string, messages: ChatMessage[]): number {
  const { fixed, texts } = promptParts(messages);
  return fixed + countTextsTokens(model, texts);
}
