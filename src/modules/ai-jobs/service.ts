import { AppError, NotFound, UpstreamFailed, ValidationError } from '../../errors.ts';
import type { Logger } from '../../platform/observability/logger.ts';
import { FinalJobError, keyedJobId, type JobContext, type JobProgress } from '../../platform/queue/queue.ts';
import { callerTexts, formatMicros, type AiService, type ChatEvent, type ChatMessage, type MeterContext } from '../ai/index.ts';
import type { Principal } from '../auth/index.ts';
import type { ServiceMap } from '../module.ts';
import type { AiJobBody, AiJobResult } from './contracts.ts';
import type { AiJobResults } from './repository.ts';

/** The queue (and job kind) of background generations. */
export const AI_JOB_QUEUE = 'ai.generate';

/** Attempts in all: a worker that dies mid-call, or an outage past the provider retries and fallbacks, gets another go. */
const ATTEMPTS = 3;

/** Progress (tokens so far) goes to the job and its socket topic at most this often: each report is a write. */
const PROGRESS_EVERY_MS = 250;

/** What the job carries: the request as resolved when it was accepted (the project's settings then, not when it runs). */
export interface AiJobData {
  chain: string[];
  messages: Array<Pick<ChatMessage, 'role' | 'content'>>;
  temperature?: number;
  maxTokens?: number;
  projectId: string | null;
  apiKeyId: string | null;
  role: 'user' | 'admin';
  /** As the request said: true, false, or null (only when the user has no socket open). */
  notify: boolean | null;
}

export interface AiJobsDeps {
  ai: AiService;
  projects: Pick<ServiceMap['projects'], 'forGeneration'>;
  limits: Pick<ServiceMap['limits'], 'checkTokens'>;
  users: Pick<ServiceMap['users'], 'defaultModel'>;
  jobs: Pick<ServiceMap['jobs'], 'enqueue'>;
  safety: Pick<ServiceMap['safety'], 'checkRequest'>;
  results: AiJobResults;
  logger?: Logger;
}

/**
 * The usage event id of a job's successful call: the same on every attempt, so
 * a call run again after a crash that followed its recording is charged once.
 */
export const usageEventIdOf = (jobId: string): string => keyedJobId(`${AI_JOB_QUEUE}.usage`, jobId);

/**
 * Generations run as background jobs: `submit` checks everything a request can
 * be refused for (model, project, budget) before queueing it; `run` is the
 * job, which streams the answer internally, reports tokens so far, and stores
 * the result before the queue marks the job done.
 */
export function createAiJobs(d: AiJobsDeps) {
  const { ai } = d;

  async function resolve(userId: string, body: AiJobBody): Promise<Omit<AiJobData, 'apiKeyId' | 'role' | 'notify'>> {
    const project = body.projectId ? await d.projects.forGeneration(userId, body.projectId) : undefined;
    if (body.projectId && !project) throw NotFound('Project', 'project_not_found');
    const named = body.model ?? project?.model ?? (await d.users.defaultModel(userId)) ?? ai.defaultModel;
    if (!named) throw ValidationError('No model to run this with: name one, use a project that has one, set defaultModel in your preferences, or set DEFAULT_MODEL', 'no_model');
    // The project's fallbacks follow its own model, not one the request chose instead.
    const wanted = body.model ? [body.model] : [named, ...(project?.fallbackModels ?? [])];
    const chain = wanted.map((name) => {
      const id = ai.resolve(name);
      if (!id) throw ValidationError(`Unknown model "${name}": see GET /v1/ai/models`, 'unknown_model', { model: name });
      return id;
    });
    let messages: AiJobData['messages'] = body.messages ?? [{ role: 'user', content: body.prompt! }];
    if (project?.systemPrompt && messages[0]?.role !== 'system') messages = [{ role: 'system', content: project.systemPrompt }, ...messages];
    return {
      chain,
      messages,
      temperature: body.temperature ?? project?.temperature ?? undefined,
      maxTokens: body.maxTokens ?? project?.maxTokens ?? undefined,
      projectId: body.projectId ?? null,
    };
  }

  const meterOf = (userId: string, data: AiJobData): MeterContext => ({ source: 'job', userId, role: data.role, apiKeyId: data.apiKeyId, projectId: data.projectId });

  return {
    /**
     * Validates and queues a generation; 400 unknown model, 404 another's project, 422 `content_flagged` by the
     * deployment's or the project's safety checks, 402 no budget left, 429 token rate limit.
     */
    async submit(caller: Principal, body: AiJobBody) {
      const resolved = await resolve(caller.userId, body);
      const data: AiJobData = { ...resolved, apiKeyId: caller.apiKeyId ?? null, role: caller.role, notify: body.notify ?? null };
      await d.limits.checkTokens(caller);
      // What the caller wrote, as the gateway checks it (the project's prompt is the project's, not the caller's).
      const written = body.messages ?? [{ role: 'user' as const, content: body.prompt! }];
      await d.safety.checkRequest({ userId: caller.userId, projectId: data.projectId, apiKeyId: data.apiKeyId }, callerTexts(written));
      // Refused now rather than as a failed job: the budgets are checked (and the reservation given straight back; the job reserves its own).
      const admitted = await ai.admit({ chain: data.chain, messages: data.messages, maxTokens: data.maxTokens, meter: meterOf(caller.userId, data) });
      admitted?.release();
      return d.jobs.enqueue<AiJobData>(AI_JOB_QUEUE, data, { userId: caller.userId, attempts: ATTEMPTS });
    },

    /**
     * The job. A result already stored (the worker died after the call, before
     * the job was marked done) is returned as it is, without calling the model.
     */
    async run(data: AiJobData, ctx: JobContext): Promise<AiJobResult> {
      const userId = ctx.userId;
      if (!userId) throw new Error('An AI job needs an owner');
      const stored = await d.results.get(ctx.id);
      if (stored) return stored;

      let model = data.chain[0]!;
      let text = '';
      let finish: Extract<ChatEvent, { type: 'finish' }> | undefined;
      let reported = 0;
      // The tokens so far: counted as they come (the whole text again at every report would cost the square of a long answer).
      let tokensSoFar = ai.tokens.running(ai.model(model)?.model ?? model);
      // Progress is for watchers: one that cannot be written (a database hiccup) must not fail, and so re-run, the call.
      const report = (value: JobProgress) => ctx.progress(value).catch((err: unknown) => d.logger?.warn({ err, jobId: ctx.id }, 'could not report ai job progress'));
      const events = ai.streamChat({
        chain: data.chain,
        messages: data.messages,
        temperature: data.temperature,
        maxTokens: data.maxTokens,
        signal: ctx.signal,
        meter: { ...meterOf(userId, data), usageEventId: usageEventIdOf(ctx.id) },
      });
      try {
        for await (const e of events) {
          if (e.type === 'attempt') {
            model = `${e.provider}:${e.model}`;
            tokensSoFar = ai.tokens.running(e.model);
          } else if (e.type === 'delta') {
            text += e.text;
            if (Date.now() - reported >= PROGRESS_EVERY_MS) {
              reported = Date.now();
              await report({ outputTokens: await tokensSoFar(text, ctx.signal), model });
            }
          } else if (e.type === 'finish') finish = e;
        }
      } catch (err) {
        // Every provider refused the request as it is (400): another attempt would be refused too.
        if (err instanceof AppError && err.status === 400) throw new FinalJobError(err.message, { cause: err });
        throw err;
      }
      if (!finish) throw UpstreamFailed('The provider ended without finishing');
      const result = await d.results.store(ctx.id, userId, {
        text,
        model: `${finish.provider}:${finish.model}`,
        provider: finish.provider,
        finishReason: finish.finishReason,
        usage: { inputTokens: finish.usage.inputTokens, outputTokens: finish.usage.outputTokens, cachedTokens: finish.usage.cachedTokens ?? 0 },
        costMicros: finish.costMicros,
        cost: finish.costMicros === null ? null : formatMicros(finish.costMicros),
      });
      await report({ outputTokens: result.usage.outputTokens, model: result.model, done: true });
      return result;
    },

    purge: (before: Date) => d.results.purge(before),
  };
}

export type AiJobs = ReturnType<typeof createAiJobs>;
