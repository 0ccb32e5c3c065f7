import { AppError, ValidationError } from '../../errors.ts';
import type { Logger } from '../../platform/observability/logger.ts';
import { StreamEnded, type StreamBuffer } from '../../platform/streams/stream-buffer.ts';
import { buildContext, DEFAULT_CONTEXT_WINDOW } from '../ai/index.ts';
import type { Ai, ChatMessage, ChatRequest, TokenCounter } from '../ai/index.ts';
import { groundingPrompt, type Grounding, type Source } from '../knowledge/index.ts';
import type { GenerationSettings, Projects } from '../projects/index.ts';
import type { UsersService } from '../users/index.ts';
import { contentText, isBlank } from './contracts.ts';
import type { Conversations } from './conversations.ts';
import { isOutcome, outcomeOf, type GenerationEvent, type Outcome, type PositionedEvent } from './generation-events.ts';
import { CANCEL_SIGNAL, endDeleted, launchRun, type Run, type RunDeps } from './generation-run.ts';
import { assertNotStreaming, inToolStep, toPublicMessage, type MessageRow, type Messages, type MessageView } from './messages.ts';
import type { Attachments, Turn } from './attachments.ts';
import { createAttention, type FollowEnd } from './attention.ts';
import type { ContentInput } from './schema.ts';
import type { Titles } from './titles.ts';
import type { Toolbox, ToolsSettings } from '../tools/index.ts';
import type { Safety } from '../safety/index.ts';
import { Conflict, NotFound } from '../../errors.ts';
import { AWAITING_APPROVAL } from './messages-repository.ts';
import { tokensOf } from './message-tokens.ts';
import type { ToolLoop } from './generation-run.ts';

export interface GenerationDeps {
  ai: Pick<Ai, 'streamChat' | 'model' | 'admit' | 'chainFor'> & { defaultModel?: string; tokens: Pick<TokenCounter, 'count' | 'countMessage'> };
  messages: Messages;
  /** File parts: checked when posted, turned into what the model sees each turn. */
  attachments: Attachments;
  conversations: Pick<Conversations, 'get'>;
  projects: Pick<Projects, 'forGeneration'>;
  /** Sources from the knowledge collections of the conversation and its project, cited in the answer. */
  grounding: Pick<Grounding, 'retrieve'>;
  /** The user's `defaultModel` preference, for turns where nothing closer names a model. */
  users: Pick<UsersService, 'defaultModel'>;
  streams: StreamBuffer;
  titles: Titles;
  logger: Logger;
  limits: { maxMessageChars: number; maxStreamSeconds: number };
  announce: RunDeps['announce'];
  /** The tools a turn offers (the project's and its MCP servers') and how they run. */
  toolbox: Pick<Toolbox, 'offered' | 'parse' | 'run'>;
  tools: Pick<ToolsSettings, 'defaultMaxSteps' | 'maxSteps'>;
  /** The deployment's and the project's rules and the moderation provider: the question before the model sees it, the answer as it comes. */
  safety: Pick<Safety, 'checkInput' | 'checkOutput'>;
}

/**
 * The id of an answer's final event when it is rebuilt from the database (its stored events expired): the
 * largest a Last-Event-ID may be (resumeOffset), so a client that resumes after it gets a 204 and stops.
 */
const FINAL_EVENT_ID = 999_999_999_999_999;

/** Who asks, beyond the user: for metering and per-role token limits. */
export interface Caller {
  apiKeyId?: string | null;
  role?: 'user' | 'admin';
}

/** An answer that finished (complete) while its user was away from it: their client left before the end and nobody else read it. */
export interface UnattendedAnswer {
  userId: string;
  conversationId: string;
  messageId: string;
}

export interface Started {
  userMessage: MessageRow;
  assistantMessage: MessageRow;
}

/** A turn waiting for the user's approvals. */
type Paused = Extract<GenerationEvent, { type: 'tool.approval_required' }>;

/** Reply tokens kept free in the context window when neither the project nor the catalog says otherwise. */
const DEFAULT_REPLY_BUDGET = 4096;
/** Most of the window sources may take (what is left after the reply), and most tokens in all. */
const SOURCES_SHARE = 0.3;
const SOURCES_MAX_TOKENS = 6000;
/** How long a cancel waits for the instance running the generation to stop it before marking it cancelled itself. */
const CANCEL_WAIT_MS = 5_000;

/** Tokens kept for the reply: the project's `maxTokens`, else the model's limit, at most DEFAULT_REPLY_BUDGET. */
const replyBudgetOf = (info: { maxOutputTokens: number | null }, settings: GenerationSettings | undefined) =>
  settings?.maxTokens ?? Math.min(info.maxOutputTokens ?? DEFAULT_REPLY_BUDGET, DEFAULT_REPLY_BUDGET);

/**
 * How far back a turn reads its branch (see Messages.historyFor): the first
 * model's window less the reply, in stored tokens. The context builder then
 * fits the system prompt and sources in the same room, so it never wants a
 * message from beyond this.
 */
const historyBudget = (info: { contextWindow: number | null; maxOutputTokens: number | null }, settings: GenerationSettings | undefined) =>
  (info.contextWindow ?? DEFAULT_CONTEXT_WINDOW) - replyBudgetOf(info, settings);

/** The models to try, in order, without repeats. */
export function modelChain(...ids: Array<string | null | undefined>): string[] {
  return [...new Set(ids.filter((id): id is string => !!id))];
}

/** What the user asked, for a title: the text, or the names of the files it was alone with. */
const questionOf = (m: MessageRow) => m.text || m.content.flatMap((p) => (p.type === 'file' ? [p.name] : [])).join(', ');

/**
 * Chat generation: stores the user's message and an assistant placeholder,
 * then answers in the background (see generation-run.ts) while callers follow
 * the stream buffer from any instance.
 */
export function createGeneration(d: GenerationDeps) {
  const runs = new Map<string, Run>();
  const attention = createAttention(d.streams);
  /** Told of each answer that completes unattended (chat's answer-ready notice), once set. */
  let onUnattended: ((answer: UnattendedAnswer) => Promise<void>) | undefined;
  const notices = new Set<Promise<void>>();

  /** After a successful answer's stream ended: hands it to onUnattended if nobody was there to see it end. */
  function settled(answer: UnattendedAnswer) {
    if (!onUnattended || !attention.unattended(answer.messageId)) return;
    const notice = onUnattended(answer)
      .catch((err) => d.logger.warn({ err, messageId: answer.messageId }, 'could not tell the user their answer is ready'))
      .finally(() => notices.delete(notice));
    notices.add(notice);
  }
  const runDeps: RunDeps = { ai: d.ai, messages: d.messages, streams: d.streams, logger: d.logger, maxStreamMs: d.limits.maxStreamSeconds * 1000, announce: d.announce };

  /**
   * Conversation, project settings and model chain; throws before anything is written.
   * The first model: the request's, the conversation's, the project's, the user's `defaultModel` preference, the server's.
   */
  async function plan(userId: string, conversationId: string, model?: string) {
    const conversation = await d.conversations.get(userId, conversationId);
    const settings = conversation.projectId ? await d.projects.forGeneration(userId, conversation.projectId) : undefined;
    const chosen = model ?? conversation.model ?? settings?.model;
    // Read only when nothing closer chose a model: at most one query per turn, none when the answer does not depend on it.
    const preferred = chosen ? null : await d.users.defaultModel(userId);
    // A project without a model of its own answers with the user's or the server's default, and its fallbacks back that up.
    const primary = chosen ?? preferred ?? d.ai.defaultModel;
    const chain = modelChain(primary, settings?.model, ...(settings?.fallbackModels ?? []), d.ai.defaultModel);
    if (!chain.length) throw ValidationError('No model to answer with: choose one for the conversation or its project, set defaultModel in your preferences, or set DEFAULT_MODEL', 'no_model');
    for (const id of chain) {
      if (!d.ai.model(id)) throw ValidationError(`Unknown model "${id}"${id === preferred ? ' (the defaultModel in your preferences)' : ''}`, 'unknown_model');
    }
    // What the first model can be sent: how far back the turn reads the branch.
    const within = historyBudget(d.ai.model(chain[0]!)!, settings);
    return { conversation, settings, chain, within };
  }

  type Plan = Awaited<ReturnType<typeof plan>>;

  /**
   * The request for the first model, over the branch the answer continues,
   * with its budgets checked and reserved now, once: a 402 comes before
   * anything is written, and the call draws on this reservation.
   */
  async function prepare(userId: string, p: Plan, branch: Turn[], caller: Caller) {
    const { conversation, settings, chain } = p;
    const meter = { userId, role: caller.role, apiKeyId: caller.apiKeyId ?? null, projectId: conversation.projectId, conversationId: conversation.id };
    const sources = await sourcesFor(userId, p, branch, caller);
    const { messages, fit } = await contextFor(userId, chain[0]!, settings, branch, sources);
    const request: ChatRequest = {
      // With images, only the links that can see them (a 400 now if the first cannot).
      chain: d.ai.chainFor(chain, messages),
      messages,
      temperature: settings?.temperature ?? undefined,
      maxTokens: settings?.maxTokens ?? undefined,
      meter: { ...meter, source: 'chat' },
    };
    const citations = sources.map(({ text: _text, ...citation }) => citation);
    const tools = await toolsFor(userId, p, caller);
    return { request, fit, meter, sources, citations, tools, admitted: await d.ai.admit({ ...request, tools: tools?.definitions }) };
  }

  /** What the turn may call: the project's tools and those its (and the user's) MCP servers offer; undefined for none. */
  async function toolsFor(userId: string, p: Plan, caller: Caller): Promise<Omit<ToolLoop, 'stepsTaken' | 'decided'> | undefined> {
    const { conversation, settings } = p;
    const scope = { userId, projectId: conversation.projectId, conversationId: conversation.id, apiKeyId: caller.apiKeyId ?? null };
    const offered = await d.toolbox.offered(scope, settings?.tools ?? []);
    if (!offered.length) return undefined;
    return {
      toolbox: d.toolbox,
      offered,
      definitions: offered.map((t) => ({ name: t.name, description: t.description, parameters: t.parameters })),
      approvals: new Set(settings?.toolApprovals ?? []),
      maxSteps: Math.min(settings?.maxToolSteps ?? d.tools.defaultMaxSteps, d.tools.maxSteps),
      context: { ...scope, limits: { sandboxTimeoutMs: settings?.sandboxTimeoutMs ?? undefined, sandboxMemoryMb: settings?.sandboxMemoryMb ?? undefined } },
    };
  }

  /** The sources for the branch's last question (before any tool step after it), within a share of the first model's window. */
  async function sourcesFor(userId: string, p: Plan, branch: Turn[], caller: Caller): Promise<Source[]> {
    const question = branch.findLast((m) => m.role === 'user');
    if (!question || question.role !== 'user' || !question.text) return [];
    const info = d.ai.model(p.chain[0]!)!;
    const window = info.contextWindow ?? 8192;
    const reply = replyBudgetOf(info, p.settings);
    const budgetTokens = Math.min(SOURCES_MAX_TOKENS, Math.floor((window - reply) * SOURCES_SHARE));
    return d.grounding.retrieve(userId, {
      projectId: p.conversation.projectId,
      conversationId: p.conversation.id,
      question: question.text,
      budgetTokens,
      apiKeyId: caller.apiKeyId ?? null,
    });
  }

  type Prepared = Awaited<ReturnType<typeof prepare>>;

  /** Keeps a running answer until it is done, then forgets it and gives back a reservation its calls never used. */
  function track(messageId: string, run: Run, admitted: Prepared['admitted']) {
    runs.set(messageId, run);
    // A run stopped before its call began never ends the reservation: give it back (a no-op once the call ended it).
    void run.done.finally(() => {
      runs.delete(messageId);
      attention.forget(messageId);
      admitted?.release();
    });
  }

  async function launch(userId: string, p: Plan, userMessage: MessageRow, assistant: MessageRow, prepared: Prepared): Promise<Started> {
    const { conversation, chain } = p;
    const { meter, admitted } = prepared;
    attention.watch(assistant.id);
    try {
      const firstExchange = conversation.title === null && userMessage.parentId === null;
      const answered = { userId, conversationId: conversation.id, messageId: assistant.id };
      const run = await launchRun(runDeps, {
        userId,
        conversationId: conversation.id,
        assistantId: assistant.id,
        created: { type: 'message.created', conversationId: conversation.id, userMessageId: userMessage.id, assistantMessageId: assistant.id },
        citations: prepared.citations.length ? { type: 'citations', citations: prepared.citations } : undefined,
        request: { ...prepared.request, meter: { ...meter, source: 'chat', messageId: assistant.id }, admitted },
        fit: prepared.fit,
        tools: prepared.tools && { ...prepared.tools, stepsTaken: 0 },
        checkOutput: outputCheck(userId, conversation.projectId, conversation.id, assistant.id, meter),
        onComplete: (answer) => {
          if (firstExchange) d.titles.start(conversation.id, chain, questionOf(userMessage), answer, { ...meter, source: 'title' });
          settled(answered);
        },
        onSignal: (message) => attention.signal(assistant.id, message),
      });
      d.announce('message.created', { userId, conversationId: conversation.id, userMessageId: userMessage.id, assistantMessageId: assistant.id, model: chain[0] ?? null });
      track(assistant.id, run, admitted);
      return { userMessage, assistantMessage: assistant };
    } catch (err) {
      attention.forget(assistant.id);
      admitted?.release();
      // Never leave a placeholder "streaming" with nothing behind it.
      await d.messages.failAssistant(assistant.id, '', { code: 'generation_failed', message: 'The answer could not be started' }).catch(() => {});
      throw err;
    }
  }

  /** Runs the writes before an answer; if they fail, its reservation is given back. */
  async function written<T>(prepared: Prepared, write: () => Promise<T>): Promise<T> {
    try {
      return await write();
    } catch (err) {
      prepared.admitted?.release();
      throw err;
    }
  }

  /**
   * The branch as the model sees it (files included), with its sources after the system prompt, fitted to its window;
   * and `fit`, which fits the turn again as its tool rounds grow it (see RunJob.fit).
   */
  async function contextFor(userId: string, modelId: string, settings: GenerationSettings | undefined, branch: Turn[], sources: Source[]) {
    const info = d.ai.model(modelId)!;
    const replyBudget = replyBudgetOf(info, settings);
    const { history, counted } = await d.attachments.toChatMessages(userId, branch, info, replyBudget);
    const system = [settings?.systemPrompt, sources.length ? groundingPrompt(sources) : undefined].filter(Boolean).join('\n\n') || undefined;
    const { tokens } = d.ai;
    const fit = async (messages: ChatMessage[]): Promise<ChatMessage[]> => {
      // The system message the first fit put first is given again as the system prompt, not kept as history.
      const rest = messages[0]?.role === 'system' ? messages.slice(1) : messages;
      // Each message is counted once per turn: the steps' calls and results too, however many steps follow (a long one on a counting thread).
      for (const m of rest) if (!counted.has(m)) counted.set(m, await tokens.countMessage(info.model, m));
      return buildContext({ model: info, system, history: rest, replyBudget, counted, tokens });
    };
    return { messages: await buildContext({ model: info, system, history, replyBudget, counted, tokens }), fit };
  }

  /**
   * The events of a message's generation from `fromOffset`, following it live; rebuilt from the database once the stream is gone.
   * `signal` aborts when the client reading them goes away: the reader counts as attending the answer until then (see attention.ts).
   */
  async function* events(message: MessageView, fromOffset: number, signal?: AbortSignal): AsyncGenerator<PositionedEvent> {
    const stop = attention.follow(message.id);
    let end: FollowEnd = 'gone';
    try {
      for await (const e of followed(message, fromOffset, signal)) {
        if (isOutcome(e.event)) end = 'reached';
        yield e;
      }
    } finally {
      stop(end === 'reached' || !signal?.aborted ? end : 'left');
    }
  }

  async function* followed(message: MessageView, fromOffset: number, signal?: AbortSignal): AsyncGenerator<PositionedEvent> {
    let any = false;
    for await (const e of d.streams.read<GenerationEvent>(message.id, fromOffset, { signal })) {
      any = true;
      yield e;
    }
    if (any || signal?.aborted || (await d.streams.state(message.id)) !== 'missing') return;
    const now = toPublicMessage(await d.messages.get(message.userId, message.conversationId, message.id));
    // With the last id there is: an EventSource resumes after it, and is told it has everything (finishedBefore).
    if (now.status !== 'streaming') yield { event: outcomeOf(now), offset: FINAL_EVENT_ID };
    else yield { event: { type: 'error', code: 'stream_unavailable', message: 'The answer is still being generated but its stream cannot be read; try again later', messageId: now.id } };
  }

  /** The answer's check, as the run calls it on its text so far. */
  const outputCheck = (userId: string, projectId: string | null, conversationId: string, messageId: string, caller: Caller) => (text: string) =>
    d.safety.checkOutput({ userId, projectId, apiKeyId: caller.apiKeyId ?? null, conversationId, messageId }, text);

  /** Marks a streaming answer cancelled here (nobody else runs it), streams how it ended and ends its stream. */
  async function settleHere(userId: string, conversationId: string, messageId: string, partial: string): Promise<MessageView> {
    await d.messages.cancelAssistant(messageId, partial).catch(() => {});
    const final = await d.messages.get(userId, conversationId, messageId);
    await d.streams.append(messageId, outcomeOf(toPublicMessage(final))).catch((err) => {
      if (!(err instanceof StreamEnded)) throw err;
    });
    await d.streams.end(messageId);
    return final;
  }

  /** A paused answer whose conversation is being deleted: marked cancelled (in case the delete fails), its stream ended with `conversation_deleted`. */
  async function endPausedDeleted(userId: string, conversationId: string, messageId: string): Promise<void> {
    const answer = await d.messages.cancelAssistant(messageId, '');
    const { projectId } = await d.conversations.get(userId, conversationId);
    await endDeleted(d, { userId, conversationId, projectId, messageId }, { provider: answer.provider, model: answer.model, latencyMs: answer.latencyMs }).catch((err) => {
      if (!(err instanceof StreamEnded)) throw err;
    });
    await d.streams.end(messageId);
  }

  /**
   * Carries on a turn that was paused for approvals, on this instance: its
   * context rebuilt from the stored branch (the question, the steps so far),
   * a new reservation, the decided calls first. A turn that cannot go on is failed, never left paused.
   */
  async function resume(userId: string, answer: MessageView, decided: NonNullable<ToolLoop['decided']>, caller: Caller): Promise<void> {
    const { conversationId } = answer;
    let prepared: Prepared | undefined;
    try {
      const p = await plan(userId, conversationId, answer.model ?? undefined);
      const branch = await d.messages.historyFor(conversationId, answer.parentId, { tokens: p.within });
      prepared = await prepare(userId, p, branch, caller);
      if (!prepared.tools) throw ValidationError('The tools this answer used are no longer offered', 'tools_unavailable');
      const lastQuestion = branch.findLastIndex((m) => m.role === 'user');
      const stepsTaken = branch.slice(lastQuestion + 1).filter((m) => m.role === 'assistant').length;
      const { meter, admitted } = prepared;
      attention.watch(answer.id);
      const run = await launchRun(runDeps, {
        userId,
        conversationId,
        assistantId: answer.id,
        request: { ...prepared.request, meter: { ...meter, source: 'chat', messageId: answer.id }, admitted },
        fit: prepared.fit,
        tools: { ...prepared.tools, stepsTaken, decided },
        checkOutput: outputCheck(userId, p.conversation.projectId, conversationId, answer.id, caller),
        onComplete: () => settled({ userId, conversationId, messageId: answer.id }),
        onSignal: (message) => attention.signal(answer.id, message),
      });
      track(answer.id, run, admitted);
    } catch (err) {
      prepared?.admitted?.release();
      attention.forget(answer.id);
      const error = err instanceof AppError ? { code: err.code, message: err.message } : { code: 'generation_failed', message: 'The answer could not be resumed' };
      if (!(err instanceof AppError)) d.logger.error({ err, messageId: answer.id }, 'could not resume an answer after approvals');
      await d.messages.failAssistant(answer.id, '', error).catch(() => {});
      const final = await d.messages.get(userId, conversationId, answer.id);
      await d.streams.append(answer.id, outcomeOf(toPublicMessage(final))).catch(() => {});
      await d.streams.end(answer.id).catch(() => {});
    }
  }

  /**
   * A question may follow any message but those of a tool step: below the model's calls, or below one of
   * their results, the model would be sent calls without (all) their results, which providers refuse.
   */
  function assertAskable(parent: MessageView) {
    if (!inToolStep(parent)) return;
    throw ValidationError(
      "A message cannot follow a tool step (a model's tool calls or their results): post it under the answer that ends the step's turn, or edit under the question",
      'parent_in_tool_step',
    );
  }

  async function assistantOf(userId: string, conversationId: string, messageId: string): Promise<MessageView> {
    const message = await d.messages.get(userId, conversationId, messageId);
    if (message.role !== 'assistant') throw ValidationError('Only assistant messages are generated', 'not_an_answer');
    return message;
  }

  return {
    /** Posts the user's message (under `parentId` to edit: a new branch) and starts answering it. */
    async start(userId: string, conversationId: string, input: { content: string | ContentInput[]; parentId?: string | null; model?: string }, caller: Caller = {}): Promise<Started> {
      const text = contentText(input.content);
      if (isBlank(text) && (typeof input.content === 'string' || !input.content.some((p) => p.type === 'file'))) {
        throw ValidationError('A message needs some text or a file', 'message_empty');
      }
      const fileIds = typeof input.content === 'string' ? [] : input.content.flatMap((p) => (p.type === 'file' ? [p.fileId] : []));
      if (new Set(fileIds).size < fileIds.length) throw ValidationError('A message carries each file once', 'duplicate_file');
      if (text.length > d.limits.maxMessageChars) {
        throw ValidationError(`A message may hold at most ${d.limits.maxMessageChars} characters`, 'message_too_long');
      }
      // The parent first: a message that is not there is a 404 whatever the model settings say.
      if (input.parentId) {
        const parent = await d.messages.get(userId, conversationId, input.parentId);
        assertAskable(parent);
        assertNotStreaming(parent);
      }
      const p = await plan(userId, conversationId, input.model);
      // Each file must be the user's (404 otherwise), before anything is written.
      const content = await d.attachments.resolve(userId, input.content);
      // Flagged (422 content_flagged), the files' text with the message, before anything is written or any model is called.
      const scope = { userId, projectId: p.conversation.projectId, apiKeyId: caller.apiKeyId ?? null, conversationId };
      await d.safety.checkInput(scope, text, () => d.attachments.textsOf(userId, content));
      const asked: Turn = { role: 'user', text, content: typeof content === 'string' ? [{ type: 'text', text: content }] : content };
      // Answers are followed through the stream buffer: refused (503) without it, before anything is written.
      d.streams.assertReachable();
      const parentId = input.parentId === undefined ? p.conversation.currentLeafId : input.parentId;
      // The question is the latest turn: the branch before it gets the room it leaves.
      const before = parentId ? await d.messages.historyFor(conversationId, parentId, { tokens: p.within - (await tokensOf(asked, d.ai.tokens)), asked: true }) : [];
      let prepared = await prepare(userId, p, [...before, asked], caller);
      const { userMessage, assistant } = await written(prepared, async () => {
        const userMessage = await d.messages.appendUserMessage(userId, conversationId, { parentId: input.parentId, content });
        return { userMessage, assistant: await d.messages.createAssistantPlaceholder(conversationId, { parentId: userMessage.id, model: p.chain[0], citations: prepared.citations }) };
      });
      if (userMessage.parentId !== parentId) {
        // Another message became the leaf meanwhile: answer the branch as stored, on the reservation already made.
        const branch = await d.messages.historyFor(conversationId, userMessage.id, { tokens: p.within });
        const { messages, fit } = await contextFor(userId, p.chain[0]!, p.settings, branch, prepared.sources);
        prepared = { ...prepared, fit, request: { ...prepared.request, messages } };
      }
      return launch(userId, p, userMessage, assistant, prepared);
    },

    /** Answers again: a new assistant message beside `messageId` (an answer) or below it (a user message). */
    async regenerate(userId: string, conversationId: string, messageId: string, input: { model?: string } = {}, caller: Caller = {}): Promise<Started> {
      const target = await d.messages.get(userId, conversationId, messageId);
      // An answer (or a step of its tool calls) is answered again from the question above it.
      const question = target.role === 'user' ? target : (await d.messages.historyFor(conversationId, target.id, { tokens: 0 })).findLast((m) => m.role === 'user');
      if (!question || target.role === 'system') throw ValidationError('Regenerate an assistant message or the user message it answers', 'not_regenerable');
      const p = await plan(userId, conversationId, input.model);
      d.streams.assertReachable();
      const prepared = await prepare(userId, p, await d.messages.historyFor(conversationId, question.id, { tokens: p.within }), caller);
      const assistant = await written(prepared, () => d.messages.createAssistantPlaceholder(conversationId, { parentId: question.id, model: p.chain[0], citations: prepared.citations }));
      return launch(userId, p, question, assistant, prepared);
    },

    /** The caller's assistant message, checked before any event is sent. */
    assistantOf,
    events,

    /**
     * Whether a finished answer's stream holds nothing from `offset` on: the client already has its end
     * (an EventSource reconnecting after the last event), which a 204 tells to stop asking.
     */
    async finishedBefore(message: MessageView, offset: number): Promise<boolean> {
      // After the final event rebuilt from the database, once the stored events had expired.
      if (offset > FINAL_EVENT_ID && message.status !== 'streaming') return true;
      if (offset === 0 || (await d.streams.state(message.id)) !== 'ended') return false;
      for await (const _ of d.streams.read(message.id, offset)) return false;
      return true;
    },

    /** 503 `dependency_unavailable` when the events cannot be read now: before an event stream is opened, so the client gets a status rather than a broken stream. */
    assertFollowable: () => d.streams.assertReachable(),

    /** Follows a generation to its end, or to a pause for approvals, and returns how it ended (or paused). */
    async outcome(message: MessageView, signal?: AbortSignal): Promise<Outcome | Paused | undefined> {
      let last: Outcome | Paused | undefined;
      for await (const { event } of events(message, 0, signal)) {
        if (isOutcome(event)) last = event;
        else if (event.type === 'tool.approval_required') last = event;
        else if (event.type === 'tool.result') last = undefined;
        if (last?.type === 'tool.approval_required') break;
      }
      return last;
    },

    /**
     * Stops every answer being written (or paused for approvals) in a conversation about to be deleted, wherever it
     * runs, without waiting for those that run: their provider calls stop, and their streams end with `conversation_deleted`.
     */
    async stopAll(userId: string, conversationId: string): Promise<void> {
      for (const id of await d.messages.streamingIn(userId, conversationId)) {
        // Paused for approvals, nothing runs it to hear a cancel: taken back (as a cancel does) and ended here.
        if (await d.messages.setAwaiting(id, false)) await endPausedDeleted(userId, conversationId, id);
        else await d.streams.signal(id, CANCEL_SIGNAL);
      }
    },

    /**
     * Stops a generation, wherever it runs, keeping the text so far. A message
     * that already finished is returned as it is.
     */
    async cancel(userId: string, conversationId: string, messageId: string): Promise<MessageView> {
      const message = await assistantOf(userId, conversationId, messageId);
      if (message.status !== 'streaming') return message;
      // Paused for approvals, nothing runs it: taking it back (as an approval would) settles it here at once.
      if (message.finishReason === AWAITING_APPROVAL && (await d.messages.setAwaiting(messageId, false))) return settleHere(userId, conversationId, messageId, '');
      await d.streams.signal(messageId, CANCEL_SIGNAL);
      let partial = '';
      for await (const { event } of d.streams.read<GenerationEvent>(messageId, 0, { signal: AbortSignal.timeout(CANCEL_WAIT_MS) })) {
        if (event.type === 'delta') partial += event.text;
      }
      const after = await d.messages.get(userId, conversationId, messageId);
      if (after.status !== 'streaming') return after;
      // Nobody stopped it: the instance running it is gone (or never heard). Settle it here.
      d.logger.warn({ messageId }, 'cancel: no instance answered; marking the generation cancelled');
      return settleHere(userId, conversationId, messageId, partial);
    },

    /**
     * The user's decision on a call waiting for approval. Once every call of
     * the step is decided, the turn goes on here: the approved calls run, the
     * denied ones are answered as denied, and the model continues, on this
     * instance whichever one paused it. 404 for another user's message or an
     * unknown call; 409 when the call was already decided or the answer is not waiting.
     */
    async decide(userId: string, conversationId: string, messageId: string, callId: string, approve: boolean, caller: Caller = {}): Promise<MessageView> {
      const message = await assistantOf(userId, conversationId, messageId);
      const step = await d.messages.lastToolStep(conversationId, message);
      const call = step.find((s) => s.part.callId === callId);
      if (!call) throw NotFound('Tool call', 'tool_call_not_found');
      if (message.status !== 'streaming' || message.finishReason !== AWAITING_APPROVAL) throw Conflict('This answer is not waiting for approvals', 'not_awaiting_approval');
      if (call.part.status !== 'pending_approval') throw Conflict(`This call was already ${call.part.status === 'denied' ? 'denied' : 'approved'}`, 'already_decided');
      const decided = { ...call.part, status: approve ? ('approved' as const) : ('denied' as const) };
      if (!(await d.messages.setToolResult(call.id, decided, 'pending_approval'))) throw Conflict('This call was already decided', 'already_decided');
      const now = await d.messages.lastToolStep(conversationId, message);
      // The last decision carries the turn on; of two at once, the one that claims the answer does.
      if (now.some((s) => s.part.status === 'pending_approval') || !(await d.messages.setAwaiting(messageId, false))) return d.messages.get(userId, conversationId, messageId);
      await resume(userId, message, now.filter((s) => s.part.status === 'approved' || s.part.status === 'denied'), caller);
      return d.messages.get(userId, conversationId, messageId);
    },

    /** Stops this instance's generations (marked failed: `server_shutdown`) and waits for them, their notices and titles. */
    async shutdown(): Promise<void> {
      for (const run of runs.values()) run.stop('shutdown');
      await Promise.allSettled([...runs.values()].map((r) => r.done));
      await Promise.allSettled([...notices]);
      await d.titles.settle();
    },

    /**
     * Sets who is told of answers that completed while their user was away (see attention.ts): chat's
     * answer-ready notice, set once every service exists. Failures are logged.
     */
    onUnattended(listener: (answer: UnattendedAnswer) => Promise<void>): void {
      onUnattended = listener;
    },

    /** Waits for this instance's generations, their notices and titles to finish (tests, draining). */
    async idle(): Promise<void> {
      while (runs.size || notices.size) await Promise.allSettled([...[...runs.values()].map((r) => r.done), ...notices]);
      await d.titles.idle();
    },
  };
}

export type Generation = ReturnType<typeof createGeneration>;
