import { AppError, UpstreamFailed } from '../../errors.ts';
import type { Logger } from '../../platform/observability/logger.ts';
import type { StreamBuffer } from '../../platform/streams/stream-buffer.ts';
import type { Announce } from '../../platform/bus/bus.ts';
import type { Ai, ChatRequest } from '../ai/index.ts';
import { outcomeOf, type GenerationEvent, type Outcome } from './generation-events.ts';
import { toPublicMessage, type Messages } from './messages.ts';
import type { FailedAttempt } from '../ai/index.ts';

export interface RunDeps {
  ai: Pick<Ai, 'streamChat'>;
  messages: Messages;
  streams: StreamBuffer;
  logger: Logger;
  /** Longest a generation may run before it is stopped with `stream_timeout`. */
  maxStreamMs: number;
  /** Publishes a domain event without waiting for the bus (real-time clients, other modules). */
  announce: Announce;
}

export interface RunJob {
  userId: string;
  conversationId: string;
  assistantId: string;
  /** The stream's first event, written before launchRun returns so readers find the stream at once. */
  created: GenerationEvent;
  /** Written right after `created`, when there are any. */
  citations?: Extract<GenerationEvent, { type: 'citations' }>;
  request: Omit<ChatRequest, 'signal'>;
  /** After a successful answer has been stored and streamed (title generation and the answer-ready notice hang off this). */
  onComplete?: (text: string) => void;
  /** Signals for this answer other than cancel (a follower on another instance starting or stopping). */
  onSignal?: (message: string) => void;
}

export type StopReason = 'cancelled' | 'timeout' | 'shutdown';

export interface Run {
  stop(reason: StopReason): void;
  /** Settles once the outcome is stored and the stream has ended; never rejects. */
  done: Promise<void>;
}

/** A message's cancel request, as sent over the stream buffer's signal channel. */
export const CANCEL_SIGNAL = 'cancel';

/**
 * Starts a generation in the background, decoupled from any HTTP request: the
 * model's output goes to the stream buffer event by event, the outcome to the
 * database once. Resolves once it listens for cancel signals and the stream
 * holds its first event, so neither a cancel nor a reader can come too early.
 */
export async function launchRun(d: RunDeps, job: RunJob): Promise<Run> {
  const controller = new AbortController();
  let reason: StopReason | undefined;
  const stop = (r: StopReason) => {
    if (reason) return;
    reason = r;
    controller.abort(new Error(`generation ${r}`));
  };
  const unlisten = await d.streams.onSignal(job.assistantId, (m) => (m === CANCEL_SIGNAL ? stop('cancelled') : job.onSignal?.(m)));
  try {
    await d.streams.append(job.assistantId, job.created);
    if (job.citations) await d.streams.append(job.assistantId, job.citations);
  } catch (err) {
    await unlisten();
    throw err;
  }
  const timer = setTimeout(() => stop('timeout'), d.maxStreamMs);
  const done = execute(d, job, controller.signal, () => reason).finally(async () => {
    clearTimeout(timer);
    await unlisten().catch(() => {});
  });
  return { stop, done };
}

async function execute(d: RunDeps, job: RunJob, signal: AbortSignal, stopped: () => StopReason | undefined): Promise<void> {
  const { assistantId: id } = job;
  const log = d.logger.child({ messageId: id, conversationId: job.conversationId });
  const append = (event: GenerationEvent) => d.streams.append(id, event);
  const startedAt = Date.now();
  const attempts: FailedAttempt[] = [];
  let text = '';
  let current: { provider: string; model: string } | undefined;
  let outcome: Outcome | undefined;
  let finished = false;
  try {
    for await (const e of d.ai.streamChat({ ...job.request, signal })) {
      if (e.type === 'attempt') current = { provider: e.provider, model: e.model };
      else if (e.type === 'attempt_failed') attempts.push(e.attempt);
      else if (e.type === 'delta') {
        // PostgreSQL text cannot hold U+0000: a model that emits one must not make its answer unstorable.
        const piece = e.text.replaceAll('\0', '');
        if (!piece) continue;
        if (!text) announceStarted(d, job, current);
        text += piece;
        await append({ type: 'delta', text: piece });
      } else if (e.type === 'finish') {
        finished = true;
        await d.messages.completeAssistant(id, {
          text,
          provider: e.provider,
          model: e.model,
          tokensIn: e.usage.inputTokens,
          tokensOut: e.usage.outputTokens,
          cachedTokens: e.usage.cachedTokens ?? null,
          costMicros: e.costMicros,
          latencyMs: Date.now() - startedAt,
          ttftMs: e.ttftMs,
          finishReason: e.finishReason,
          attempts,
        });
      }
    }
    if (!finished) throw UpstreamFailed('The provider stream ended without finishing', 'stream_interrupted');
  } catch (err) {
    const reason = stopped();
    try {
      if (reason === 'cancelled') {
        await d.messages.cancelAssistant(id, text, { ...current, attempts, latencyMs: Date.now() - startedAt });
      } else {
        const error = reason ? stopError(reason, d.maxStreamMs) : failure(err, log);
        const all = err instanceof AppError && Array.isArray(err.extra.attempts) ? (err.extra.attempts as FailedAttempt[]) : attempts;
        await d.messages.failAssistant(id, text, error, all);
      }
    } catch (finishErr) {
      // Already finished elsewhere (a cancel that gave up waiting for us): that outcome stands.
      log.warn({ err: finishErr }, 'could not record the outcome of a generation');
    }
  }
  try {
    const message = toPublicMessage(await d.messages.get(job.userId, job.conversationId, id));
    outcome = message.status === 'streaming' ? undefined : outcomeOf(message);
    if (outcome) await append(outcome);
    if (message.status !== 'streaming') announceFinished(d, job, message);
  } catch (err) {
    log.warn({ err }, 'could not stream the outcome of a generation');
  }
  await d.streams.end(id).catch((err) => log.error({ err }, 'could not end a generation stream'));
  if (outcome?.type === 'message.completed' && outcome.message.status === 'complete') job.onComplete?.(text);
}

function announceStarted(d: RunDeps, job: RunJob, current: { provider: string; model: string } | undefined) {
  d.announce('message.stream.started', { userId: job.userId, conversationId: job.conversationId, messageId: job.assistantId, provider: current?.provider ?? null, model: current?.model ?? null });
}

function announceFinished(d: RunDeps, job: RunJob, m: ReturnType<typeof toPublicMessage>) {
  d.announce('message.stream.finished', {
    userId: job.userId,
    conversationId: job.conversationId,
    projectId: job.request.meter?.projectId ?? null,
    messageId: m.id,
    status: m.status as 'complete' | 'failed' | 'cancelled',
    provider: m.provider,
    model: m.model,
    finishReason: m.finishReason,
    usage: { inputTokens: m.tokensIn, outputTokens: m.tokensOut, cachedTokens: m.cachedTokens, costMicros: m.costMicros },
    latencyMs: m.latencyMs,
    error: m.error ? { code: m.error.code, message: m.error.message } : null,
  });
}

function stopError(reason: StopReason, maxStreamMs: number) {
  if (reason === 'timeout') return { code: 'stream_timeout', message: `The answer took longer than ${Math.round(maxStreamMs / 1000)} s and was stopped` };
  return { code: 'server_shutdown', message: 'The server shut down while answering; regenerate to try again' };
}

function failure(err: unknown, log: Logger) {
  if (err instanceof AppError) return { code: err.code, message: err.message };
  log.error({ err }, 'generation failed');
  return { code: 'generation_failed', message: 'The answer could not be generated' };
}
