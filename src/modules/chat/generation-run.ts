import { randomUUID } from 'node:crypto';
import { AppError, Conflict, UpstreamFailed } from '../../errors.ts';
import { isDatabaseUnreachable } from '../../platform/db/database.ts';
import type { Logger } from '../../platform/observability/logger.ts';
import type { StreamBuffer } from '../../platform/streams/stream-buffer.ts';
import { storableText } from '../../platform/text.ts';
import type { Announce } from '../../platform/bus/bus.ts';
import type { Ai, ChatEvent, ChatMessage, ChatRequest, ToolCall, ToolDefinition } from '../ai/index.ts';
import type { Tool, ToolOutcome, Toolbox, ToolRunContext } from '../tools/index.ts';
import type { AssistantResult } from './messages.ts';
import type { ToolCallStatus, ToolResultPart } from './schema.ts';
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
  /** The stream's first event, written before launchRun returns so readers find the stream at once (absent when a paused turn resumes). */
  created?: GenerationEvent;
  /** Written right after `created`, when there are any. */
  citations?: Extract<GenerationEvent, { type: 'citations' }>;
  request: Omit<ChatRequest, 'signal'>;
  /**
   * Fits the turn's messages to the first model's window again (oldest whole turns leave first, the
   * turn's own question, calls and results stay): before each step after a tool round, which grows the
   * turn, so a turn that goes on reads the same as one that paused for approvals and was rebuilt.
   */
  fit?: (messages: ChatMessage[]) => Promise<ChatMessage[]>;
  /** The tools the model may call this turn, and how (absent: a plain answer). */
  tools?: ToolLoop;
  /** Checks the answer's text so far (safety): at each step's end and every OUTPUT_CHECK_CHARS while it streams; a flag stops it. */
  checkOutput?: (text: string) => Promise<{ flagged: false } | { flagged: true; categories: string[] }>;
  /** After a successful answer has been stored and streamed (title generation and the answer-ready notice hang off this). */
  onComplete?: (text: string) => void;
  /** Signals for this answer other than cancel (a follower on another instance starting or stopping). */
  onSignal?: (message: string) => void;
}

/** How a turn uses tools: what is offered, what waits for approval, how many steps it may take. */
export interface ToolLoop {
  toolbox: Pick<Toolbox, 'parse' | 'run'>;
  offered: Tool[];
  /** The offered tools as the model is told of them. */
  definitions: ToolDefinition[];
  /** The project's tools whose calls wait for approval (besides those that always do). */
  approvals: ReadonlySet<string>;
  /** Model calls the turn may make in all. */
  maxSteps: number;
  /** Model calls it made before (a turn resumed after approvals). */
  stepsTaken: number;
  context: Omit<ToolRunContext, 'signal'>;
  /** On resume: the last step's decided calls (`approved`, `denied`), by their tool message's id, run or answered first. */
  decided?: Array<{ id: string; part: ToolResultPart }>;
}

export type StopReason = 'cancelled' | 'timeout' | 'shutdown';

export interface Run {
  stop(reason: StopReason): void;
  /** Settles once the outcome is stored and the stream has ended; never rejects. */
  done: Promise<void>;
}

/** New characters of an answer between two checks of its text while it streams. */
const OUTPUT_CHECK_CHARS = 2000;

/** How long the writes of how an answer ended are tried again while PostgreSQL cannot be reached. */
const OUTCOME_RETRY_MS = 30_000;

/**
 * A write of how the answer ended (or its read back), tried again while PostgreSQL is unreachable: the answer
 * was generated and charged, and a database that went away for a few seconds must not lose it.
 */
async function whileDatabaseDown<T>(write: () => Promise<T>, log: Logger): Promise<T> {
  const deadline = Date.now() + OUTCOME_RETRY_MS;
  for (let wait = 250; ; wait = Math.min(wait * 2, 4_000)) {
    try {
      return await write();
    } catch (err) {
      if (!isDatabaseUnreachable(err) || Date.now() + wait > deadline) throw err;
      log.warn({ err: (err as Error).message }, 'PostgreSQL unreachable: the outcome of a generation is written again shortly');
      await new Promise((r) => setTimeout(r, wait));
    }
  }
}

/** The answer was flagged by the safety checks: it stops, marked `flagged`. */
class FlaggedOutput extends Error {
  readonly categories: string[];
  constructor(categories: string[]) {
    super(`flagged: ${categories.join(', ')}`);
    this.categories = categories;
  }
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
    if (job.created) await d.streams.append(job.assistantId, job.created);
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
  const loop = job.tools;
  let attempts: FailedAttempt[] = [];
  let text = '';
  let started = false;
  let current: { provider: string; model: string } | undefined;
  let outcome: Outcome | undefined;
  let checkedUpTo = 0;
  const check = async (upTo: number) => {
    if (!job.checkOutput || !text) return;
    checkedUpTo = upTo;
    const verdict = await job.checkOutput(text);
    if (verdict.flagged) throw new FlaggedOutput(verdict.categories);
  };
  try {
    const fit = job.fit ?? (async (messages: ChatMessage[]) => messages);
    let history = job.request.messages;
    let admitted = job.request.admitted;
    // The decided calls' results replace what the model was told while they waited.
    if (loop?.decided?.length) history = await fit(await runDecided(d, job, loop, history, signal));
    for (let step = (loop?.stepsTaken ?? 0) + 1; ; step++) {
      // Each step is one metered model call; only the first draws on the reservation made before the turn was stored.
      const stepStartedAt = Date.now();
      const calls: ToolCall[] = [];
      let finish: Extract<ChatEvent, { type: 'finish' }> | undefined;
      text = '';
      checkedUpTo = 0;
      attempts = [];
      for await (const e of d.ai.streamChat({ ...job.request, messages: history, admitted, tools: loop?.definitions, signal })) {
        if (e.type === 'attempt') current = { provider: e.provider, model: e.model };
        else if (e.type === 'attempt_failed') attempts.push(e.attempt);
        else if (e.type === 'tool_call') calls.push(storableCall(e.call, calls));
        else if (e.type === 'delta') {
          // Deltas hold no NUL (the attempt drops them: PostgreSQL text cannot hold U+0000).
          const piece = e.text;
          if (!piece) continue;
          if (!started) announceStarted(d, job, current);
          started = true;
          text += piece;
          await append({ type: 'delta', text: piece });
          if (text.length - checkedUpTo >= OUTPUT_CHECK_CHARS) await check(text.length);
        } else if (e.type === 'finish') finish = e;
      }
      admitted = undefined;
      if (!finish) throw UpstreamFailed('The provider stream ended without finishing', 'stream_interrupted');
      await check(text.length);
      const metrics = {
        provider: finish.provider,
        model: finish.model,
        tokensIn: finish.usage.inputTokens,
        tokensOut: finish.usage.outputTokens,
        cachedTokens: finish.usage.cachedTokens ?? null,
        costMicros: finish.costMicros,
        latencyMs: Date.now() - stepStartedAt,
        ttftMs: finish.ttftMs,
        finishReason: finish.finishReason,
        attempts,
      };
      if (!calls.length || !loop) {
        await whileDatabaseDown(() => d.messages.completeAssistant(id, { ...metrics, text, latencyMs: Date.now() - startedAt }), log);
        break;
      }
      if (step >= loop.maxSteps) {
        // The model still wants tools: the turn ends here with what it said, its calls unanswered.
        await whileDatabaseDown(() => d.messages.completeAssistant(id, { ...metrics, text, latencyMs: Date.now() - startedAt, finishReason: 'max_steps' }), log);
        break;
      }
      const ran = await runStep(d, job, loop, { text, calls, metrics }, signal);
      history = await fit([...history, { role: 'assistant', content: text, toolCalls: calls }, ...ran.answered]);
      text = '';
      if (signal.aborted) throw signal.reason;
      if (ran.pending.length) {
        if (!(await d.messages.setAwaiting(id, true))) throw Conflict('The message is no longer streaming', 'message_not_streaming');
        await append({ type: 'tool.approval_required', messageId: id, calls: ran.pending });
        d.announce('message.tool.approval_required', { userId: job.userId, conversationId: job.conversationId, messageId: id, calls: ran.pending });
        // The stream stays open: whoever approves the last call carries the turn on (generation.decide), on any instance.
        return;
      }
    }
  } catch (err) {
    const reason = stopped();
    try {
      if (err instanceof FlaggedOutput) {
        await whileDatabaseDown(() => d.messages.flagAssistant(id, text, { code: 'content_flagged', message: `The answer was stopped: it was flagged (${err.categories.join(', ')})` }, { ...current, attempts }), log);
      } else if (reason === 'cancelled') {
        await whileDatabaseDown(() => d.messages.cancelAssistant(id, text, { ...current, attempts, latencyMs: Date.now() - startedAt }), log);
      } else {
        const error = reason ? stopError(reason, d.maxStreamMs) : failure(err, log);
        const all = err instanceof AppError && Array.isArray(err.extra.attempts) ? (err.extra.attempts as FailedAttempt[]) : attempts;
        await whileDatabaseDown(() => d.messages.failAssistant(id, text, error, all), log);
      }
    } catch (finishErr) {
      // Already finished elsewhere (a cancel that gave up waiting for us): that outcome stands.
      log.warn({ err: finishErr }, 'could not record the outcome of a generation');
    }
  }
  try {
    const message = toPublicMessage(await whileDatabaseDown(() => d.messages.get(job.userId, job.conversationId, id), log));
    outcome = message.status === 'streaming' ? undefined : outcomeOf(message);
    if (outcome) await append(outcome);
    if (message.status !== 'streaming') announceFinished(d, job, message);
  } catch (err) {
    if (err instanceof AppError && err.status === 404) {
      const answer = { userId: job.userId, conversationId: job.conversationId, projectId: job.request.meter?.projectId ?? null, messageId: id };
      await endDeleted(d, answer, { provider: current?.provider ?? null, model: current?.model ?? null, latencyMs: Date.now() - startedAt }).catch((e) => log.warn({ err: e }, 'could not end the stream of a deleted answer'));
    }
    else {
      log.warn({ err }, 'could not stream the outcome of a generation');
      // The stream still ends with how it went, so a client is not left waiting for an end that never comes.
      if (isDatabaseUnreachable(err)) {
        await append({ type: 'error', code: 'dependency_unavailable', message: 'PostgreSQL is unavailable: the answer could not be saved', messageId: id }).catch(() => {});
      }
    }
  }
  await d.streams.end(id).catch((err) => log.error({ err }, 'could not end a generation stream'));
  if (outcome?.type === 'message.completed' && outcome.message.status === 'complete') job.onComplete?.(text);
}

const statusOf = (o: ToolOutcome): ToolCallStatus => (o.ok ? 'ok' : o.error?.code === 'cancelled' ? 'cancelled' : 'error');

/**
 * A call as the step stores it and approvals name it: its text storable (a model can put a NUL or a lone surrogate
 * in a name or in arguments), and an id of its own within the step (a model may repeat one, or leave it empty).
 */
function storableCall(call: ToolCall, before: ToolCall[]): ToolCall {
  const id = storableText(call.id);
  return { id: id && !before.some((c) => c.id === id) ? id : `call_${randomUUID()}`, name: storableText(call.name), arguments: storableText(call.arguments) };
}

const resultPart = (call: ToolCall, o: ToolOutcome): ToolResultPart => ({
  type: 'tool_result',
  callId: call.id,
  name: call.name,
  arguments: call.arguments,
  status: statusOf(o),
  // A tool's words may be anything (an MCP server's, an echo of the arguments): stored as PostgreSQL can.
  result: storableText(o.content),
  error: o.error ? { ...o.error, message: storableText(o.error.message) } : null,
  durationMs: o.durationMs,
});

const resultEvent = (p: ToolResultPart): GenerationEvent => ({ type: 'tool.result', id: p.callId, name: p.name, status: p.status, result: p.result, error: p.error, durationMs: p.durationMs });

/**
 * One step's calls: each streamed as `tool.call`, the ones that need no
 * approval run together, then the step stored (the model's message, a `tool`
 * message per call). Calls waiting for approval are stored as pending and
 * returned; the others' results are what the model reads next.
 */
async function runStep(d: RunDeps, job: RunJob, loop: ToolLoop, step: { text: string; calls: ToolCall[]; metrics: Omit<AssistantResult, 'text'> }, signal: AbortSignal) {
  const planned = step.calls.map((call) => {
    const tool = loop.offered.find((t) => t.name === call.name);
    const parsed = loop.toolbox.parse(tool, call.name, call.arguments);
    // A call that cannot run (unknown tool, bad arguments) is answered at once: there is nothing to approve.
    const needsApproval = !!tool && 'args' in parsed && (!!tool.needsApproval || loop.approvals.has(call.name));
    return { call, tool, parsed, needsApproval };
  });
  for (const p of planned) await d.streams.append(job.assistantId, { type: 'tool.call', id: p.call.id, name: p.call.name, arguments: p.call.arguments, needsApproval: p.needsApproval } satisfies GenerationEvent);
  const results = await Promise.all(
    planned.map(async ({ call, tool, parsed, needsApproval }): Promise<ToolResultPart> => {
      if (needsApproval) return { type: 'tool_result', callId: call.id, name: call.name, arguments: call.arguments, status: 'pending_approval', result: null, error: null, durationMs: null };
      const outcome = 'outcome' in parsed ? parsed.outcome : await loop.toolbox.run(tool!, parsed.args, { ...loop.context, signal });
      const part = resultPart(call, outcome);
      await d.streams.append(job.assistantId, resultEvent(part));
      return part;
    }),
  );
  await d.messages.appendToolStep(job.conversationId, job.assistantId, {
    text: step.text,
    calls: step.calls.map((c) => ({ type: 'tool_call', id: c.id, name: c.name, arguments: c.arguments })),
    results,
    metrics: step.metrics,
  });
  return {
    answered: results.filter((r) => r.status !== 'pending_approval').map((r): ChatMessage => ({ role: 'tool', toolCallId: r.callId, content: r.result ?? '' })),
    pending: results.filter((r) => r.status === 'pending_approval').map((r) => ({ id: r.callId, name: r.name, arguments: r.arguments })),
  };
}

/** A turn resumed after approvals: runs the approved calls (together), answers the denied ones, stores both, and gives the model their results. */
async function runDecided(d: RunDeps, job: RunJob, loop: ToolLoop, history: ChatMessage[], signal: AbortSignal): Promise<ChatMessage[]> {
  const results = new Map<string, string>();
  await Promise.all(
    (loop.decided ?? []).map(async ({ id, part }) => {
      const call = { id: part.callId, name: part.name, arguments: part.arguments };
      let outcome: ToolOutcome;
      if (part.status === 'approved') {
        const tool = loop.offered.find((t) => t.name === part.name);
        const parsed = loop.toolbox.parse(tool, part.name, part.arguments);
        outcome = 'outcome' in parsed ? parsed.outcome : await loop.toolbox.run(tool!, parsed.args, { ...loop.context, signal });
      } else {
        const message = 'The user denied this call';
        outcome = { ok: false, content: JSON.stringify({ error: message }), error: { code: 'denied', message }, durationMs: 0 };
      }
      const done = { ...resultPart(call, outcome), ...(part.status === 'denied' ? { status: 'denied' as const } : {}) };
      await d.messages.setToolResult(id, done);
      await d.streams.append(job.assistantId, resultEvent(done));
      results.set(part.callId, done.result ?? '');
    }),
  );
  if (signal.aborted) throw signal.reason;
  return history.map((m) => (m.role === 'tool' && m.toolCallId && results.has(m.toolCallId) ? { ...m, content: results.get(m.toolCallId)! } : m));
}

function announceStarted(d: RunDeps, job: RunJob, current: { provider: string; model: string } | undefined) {
  d.announce('message.stream.started', { userId: job.userId, conversationId: job.conversationId, messageId: job.assistantId, provider: current?.provider ?? null, model: current?.model ?? null });
}

/**
 * The conversation went while its answer was written (or paused for approvals): followers get a terminal
 * error, sockets the stream's end. The caller ends the stream after.
 */
export async function endDeleted(
  d: Pick<RunDeps, 'streams' | 'announce'>,
  answer: { userId: string; conversationId: string; projectId: string | null; messageId: string },
  at: { provider: string | null; model: string | null; latencyMs: number | null },
) {
  const error = { code: 'conversation_deleted', message: 'The conversation was deleted while this answer was being written' };
  await d.streams.append(answer.messageId, { type: 'error', ...error, messageId: answer.messageId } satisfies GenerationEvent);
  d.announce('message.stream.finished', {
    userId: answer.userId,
    conversationId: answer.conversationId,
    projectId: answer.projectId,
    messageId: answer.messageId,
    status: 'cancelled',
    provider: at.provider,
    model: at.model,
    finishReason: null,
    usage: { inputTokens: null, outputTokens: null, cachedTokens: null, costMicros: null },
    latencyMs: at.latencyMs,
    error,
  });
}

function announceFinished(d: RunDeps, job: RunJob, m: ReturnType<typeof toPublicMessage>) {
  d.announce('message.stream.finished', {
    userId: job.userId,
    conversationId: job.conversationId,
    projectId: job.request.meter?.projectId ?? null,
    messageId: m.id,
    status: m.status as 'complete' | 'failed' | 'cancelled' | 'flagged',
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
