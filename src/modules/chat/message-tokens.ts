import type { ChatMessage, TokenCounter } from '../ai/index.ts';
import type { Turn } from './attachments.ts';

/** The encoding of every stored count, and a model name counted with it. */
export const STORED_ENCODING = 'o200k_base';
const STORED_ENCODING_MODEL = 'gpt-4o';

/**
 * The message as the model is sent it, leaving out its files (those are
 * rendered each turn, see attachments.ts); undefined for what the model is
 * never shown: a flagged answer, an empty placeholder, system rows.
 */
export function asSent(m: Turn): ChatMessage | undefined {
  if (m.role === 'tool') {
    const r = m.content.find((p) => p.type === 'tool_result');
    // A call still waiting for the user is answered once they decide; until then the model is told so.
    return r && { role: 'tool', toolCallId: r.callId, content: r.result ?? JSON.stringify({ error: r.error?.message ?? 'The call has not run yet' }) };
  }
  if (m.role !== 'user' && m.role !== 'assistant') return undefined;
  // What the safety checks stopped is not shown to the model again.
  if (m.status === 'flagged') return undefined;
  const calls = m.content.flatMap((p) => (p.type === 'tool_call' ? [{ id: p.id, name: p.name, arguments: p.arguments }] : []));
  if (calls.length) return { role: 'assistant', content: m.text, toolCalls: calls };
  return m.text ? { role: m.role, content: m.text } : undefined;
}

/**
 * A message's `tokens`: what it takes in a prompt, counted once when it is
 * written, so a turn never re-tokenizes its history. Counted with o200k_base
 * (exact for current OpenAI models, the estimate used for every other model
 * but the older OpenAI ones) exactly as the context builder counts the
 * message; for a message with files, only its own text: a lower bound, its
 * files being rendered and counted each turn. Through the counter: a long
 * question or answer is counted on a thread, not on the event loop.
 */
export async function tokensOf(m: Turn, tokens: Pick<TokenCounter, 'countMessage'>): Promise<number> {
  const sent = asSent(m);
  return sent ? tokens.countMessage(STORED_ENCODING_MODEL, sent) : 0;
}
