import type { Logger } from '../../platform/observability/logger.ts';
import type { Ai, MeterContext } from '../ai/types.ts';
import { TITLE_MAX_CHARS } from './contracts.ts';
import type { GenerationRepository } from './generation-repository.ts';

const INSTRUCTIONS =
  'Write a title for the conversation below: at most six words, in the language of the conversation, ' +
  'no quotes, no final punctuation. Reply with the title only.';
/** Enough of the exchange to name it; the title prompt should stay cheap. */
const EXCERPT_CHARS = 2000;
const TITLE_CHARS = Math.min(80, TITLE_MAX_CHARS);

/** A model's title cleaned up: one line, no wrapping quotes or "Title:", bounded. */
export function cleanTitle(raw: string): string | undefined {
  let title = raw.trim().split('\n')[0]!.trim();
  title = title.replace(/^(title|titre)\s*:\s*/i, '').replace(/^["'“”‘’*#\s]+|["'“”‘’*\s]+$/g, '').replace(/[.。!]+$/, '').trim();
  if (!title) return undefined;
  return title.length > TITLE_CHARS ? `${title.slice(0, TITLE_CHARS - 1).trimEnd()}…` : title;
}

/**
 * Names conversations after their first exchange, in the background: the
 * reply is never held up for it, and a failure is logged, not shown.
 */
export function createTitles(d: { ai: Pick<Ai, 'streamChat'>; repo: GenerationRepository; logger: Logger }) {
  const pending = new Set<Promise<void>>();

  async function generate(conversationId: string, chain: string[], question: string, answer: string, meter?: MeterContext): Promise<void> {
    let raw = '';
    const exchange = `User: ${question.slice(0, EXCERPT_CHARS)}\n\nAssistant: ${answer.slice(0, EXCERPT_CHARS)}`;
    const stream = d.ai.streamChat({
      chain,
      messages: [
        { role: 'system', content: INSTRUCTIONS },
        { role: 'user', content: exchange },
      ],
      maxTokens: 32,
      temperature: 0.2,
      signal: AbortSignal.timeout(30_000),
      meter,
    });
    for await (const e of stream) if (e.type === 'delta') raw += e.text;
    const title = cleanTitle(raw);
    if (title) await d.repo.setTitleIfUnset(conversationId, title);
  }

  return {
    /** Starts naming the conversation and returns at once. */
    start(conversationId: string, chain: string[], question: string, answer: string, meter?: MeterContext): void {
      const job = generate(conversationId, chain, question, answer, meter)
        .catch((err) => d.logger.warn({ err, conversationId }, 'title generation failed'))
        .finally(() => pending.delete(job));
      pending.add(job);
    },
    /** Waits for titles being generated (shutdown, tests). */
    async settle(): Promise<void> {
      await Promise.allSettled([...pending]);
    },
  };
}

export type Titles = ReturnType<typeof createTitles>;
