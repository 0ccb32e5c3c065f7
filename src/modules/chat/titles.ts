import { setTimeout as sleep } from 'node:timers/promises';
import { AppError } from '../../errors.ts';
import type { Logger } from '../../platform/observability/logger.ts';
import type { JobHandler } from '../../platform/queue/queue.ts';
import { clip } from '../../platform/text.ts';
import type { JobDefinition } from '../module.ts';
import type { Jobs } from '../jobs/index.ts';
import type { Ai, MeterContext } from '../ai/index.ts';
import { TITLE_MAX_CHARS } from './contracts.ts';
import type { ConversationsRepository } from './conversations-repository.ts';

const INSTRUCTIONS =
  'Write a title for the conversation below: at most six words, in the language of the conversation, ' +
  'no quotes, no final punctuation. Reply with the title only.';
/** Enough of the exchange to name it; the title prompt should stay cheap. */
const EXCERPT_CHARS = 2000;
const TITLE_CHARS = Math.min(80, TITLE_MAX_CHARS);

/** A model's title cleaned up: one line, no wrapping quotes or "Title:", bounded. */
export function cleanTitle(raw: string): string | undefined {
  // No control characters in a title (and PostgreSQL text cannot hold U+0000).
  let title = raw.trim().split('\n')[0]!.replace(/[\u0000-\u001f\u007f\s]+/g, ' ').trim();
  title = title.replace(/^(title|titre)\s*:\s*/i, '').replace(/^["'\u201C\u201D\u2018\u2019*#\s]+|["'\u201C\u201D\u2018\u2019*\s]+$/g, '').replace(/[.\u3002!]+$/, '').trim();
  if (!title) return undefined;
  return title.length > TITLE_CHARS ? `${clip(title, TITLE_CHARS - 1).trimEnd()}…` : title;
}

export const TITLE_QUEUE = 'chat.title';
/** Longest a title request may take; the job's own timeout is a little longer. */
const TITLE_TIMEOUT_MS = 30_000;

export interface TitleJob {
  conversationId: string;
  chain: string[];
  question: string;
  answer: string;
  meter?: MeterContext;
}

/**
 * Names conversations after their first exchange, as a background job: the
 * reply is never held up for it. A provider that refuses is logged and leaves
 * no title (the AI layer already retried and fell back); anything else fails
 * the attempt, and the queue tries again, on whichever worker is alive.
 */
export function createTitles(d: { ai: Pick<Ai, 'streamChat'>; conversations: Pick<ConversationsRepository, 'setTitleIfUnset'>; logger: Logger; jobs: Pick<Jobs, 'enqueue' | 'get'> }) {
  const enqueuing = new Set<Promise<void>>();
  const queued = new Set<string>();

  async function generate(job: TitleJob, signal: AbortSignal): Promise<string | undefined> {
    let raw = '';
    const exchange = `User: ${clip(job.question, EXCERPT_CHARS)}\n\nAssistant: ${clip(job.answer, EXCERPT_CHARS)}`;
    const stream = d.ai.streamChat({
      chain: job.chain,
      messages: [
        { role: 'system', content: INSTRUCTIONS },
        { role: 'user', content: exchange },
      ],
      maxTokens: 32,
      temperature: 0.2,
      signal: AbortSignal.any([signal, AbortSignal.timeout(TITLE_TIMEOUT_MS)]),
      meter: job.meter,
    });
    for await (const e of stream) if (e.type === 'delta') raw += e.text;
    const title = cleanTitle(raw);
    if (title) await d.conversations.setTitleIfUnset(job.conversationId, title);
    return title;
  }

  /** The queue's handler (the chat module declares it): a title, or none when the model could not make one. */
  const handler: JobHandler<TitleJob, { title: string | null; error?: string }> = async (job, ctx) => {
    try {
      return { title: (await generate(job, ctx.signal)) ?? null };
    } catch (err) {
      if (!(err instanceof AppError)) throw err;
      d.logger.warn({ err, conversationId: job.conversationId }, 'title generation failed');
      return { title: null, error: err.code };
    }
  };

  return {
    job: { queue: TITLE_QUEUE, handler, options: { concurrency: 4, timeoutMs: TITLE_TIMEOUT_MS + 5_000 } } satisfies JobDefinition,

    /** Queues naming the conversation (once per conversation) and returns at once. */
    start(conversationId: string, chain: string[], question: string, answer: string, meter?: MeterContext): void {
      const job: TitleJob = { conversationId, chain, question, answer, meter };
      const p = d.jobs
        .enqueue(TITLE_QUEUE, job, { userId: meter?.userId ?? null, idempotencyKey: `title:${conversationId}` })
        .then((j) => void queued.add(j.id))
        .catch((err) => d.logger.warn({ err, conversationId }, 'title generation could not be queued'))
        .finally(() => enqueuing.delete(p));
      enqueuing.add(p);
    },
    /** Waits until the titles asked for here are queued (shutdown). */
    async settle(): Promise<void> {
      await Promise.allSettled([...enqueuing]);
    },
    /** Waits until the titles asked for here have been generated or given up, where a worker runs (tests, draining). */
    async idle(timeoutMs = 30_000): Promise<void> {
      await Promise.allSettled([...enqueuing]);
      const deadline = Date.now() + timeoutMs;
      for (const id of queued) {
        for (;;) {
          const job = await d.jobs.get(id);
          if (!job || job.state === 'completed' || job.state === 'dead' || Date.now() > deadline) break;
          await sleep(20);
        }
        queued.delete(id);
      }
    },
  };
}

export type Titles = ReturnType<typeof createTitles>;
