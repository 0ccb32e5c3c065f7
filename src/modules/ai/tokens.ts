import { createRequire } from 'node:module';
import type { ChatMessage } from './types.ts';

type Encoding = typeof import('gpt-tokenizer');
const require = createRequire(import.meta.url);
/** Each table is built when its module loads (about 20 MB of heap): loaded on first use, so an idle server holds neither. */
let o200k: Encoding | undefined;
let cl100k: Encoding | undefined;

/** Special-token strings in user text are plain text here; the default would throw on them. */
const PLAIN = { disallowedSpecial: new Set<string>() };

/** Older OpenAI models use cl100k_base; everything else is counted with o200k_base, exact for current OpenAI models and a fair estimate for others. */
const CL100K = /^(gpt-4(?!o|\.\d)|gpt-3\.5)/;

/** The encoding `model` is counted with. */
export const encodingOf = (model: string): 'cl100k_base' | 'o200k_base' => (CL100K.test(model) ? 'cl100k_base' : 'o200k_base');

const encoding = (model: string): Encoding =>
  CL100K.test(model) ? (cl100k ??= require('gpt-tokenizer/encoding/cl100k_base') as Encoding) : (o200k ??= require('gpt-tokenizer') as Encoding);

export function countTextTokens(model: string, text: string): number {
  if (!text) return 0;
  return encoding(model).countTokens(text, PLAIN);
}

/**
 * The first `maxTokens` tokens of a text, and how many it had: a file's text
 * cut to the room it has in a prompt.
 */
export function truncateTokens(model: string, text: string, maxTokens: number): { text: string; tokens: number; total: number } {
  const { encode, decode } = encoding(model);
  const tokens = encode(text, PLAIN);
  if (tokens.length <= maxTokens) return { text, tokens: tokens.length, total: tokens.length };
  const kept = Math.max(0, maxTokens);
  return { text: decode(tokens.slice(0, kept)), tokens: kept, total: tokens.length };
}

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

export function countMessageTokens(model: string, m: ChatMessage): number {
  let n = MESSAGE_OVERHEAD + countTextTokens(model, m.content);
  for (const part of m.parts ?? []) if (part.type === 'image') n += IMAGE_TOKENS;
  for (const call of m.toolCalls ?? []) n += MESSAGE_OVERHEAD + countTextTokens(model, call.name) + countTextTokens(model, call.arguments);
  return n;
}

export function countPromptTokens(model: string, messages: ChatMessage[]): number {
  return REPLY_PRIMING + messages.reduce((sum, m) => sum + countMessageTokens(model, m), 0);
}
