import { AppError, ValidationError } from '../../errors.ts';
import { deeperThan, MAX_DEPTH } from '../../http/nul-guard.ts';
import type { Logger } from '../../platform/observability/logger.ts';
import type { Metering } from '../ai/index.ts';
import { createPool, QueueFull, type Pool } from './pool.ts';
import type { OutputLine, RunErrorCode } from './protocol.ts';
import type { SandboxSettings } from './settings.ts';

export interface RunInput {
  code: string;
  /** Any JSON value, seen by the script as the global `input`. */
  input?: unknown;
  /** CPU time the script may use. */
  timeoutMs?: number;
  /** Heap of its isolate. */
  memoryMb?: number;
}

export interface RunResult {
  status: 'ok' | 'error';
  result: unknown;
  output: OutputLine[];
  truncated: boolean;
  error?: { code: RunErrorCode; message: string };
  cpuMs: number;
  wallMs: number;
}

/** Who a run is metered to. */
export interface Caller {
  userId: string;
  apiKeyId?: string | null;
  projectId?: string | null;
}

/**
 * The wall-clock limit of a run: its CPU time, plus as much again (at least
 * a second) for the isolate's start and a busy machine. A script awaiting a
 * promise that never settles uses no CPU; this is what ends it.
 */
export const wallLimit = (cpuMs: number) => cpuMs + Math.max(1_000, cpuMs);

const tooLarge = (detail: string) => new AppError(413, 'script_too_large', 'Payload too large', detail);
const tooMany = (detail: string) => new AppError(429, 'too_many_runs', 'Too many requests', detail, { headers: { 'retry-after': '1' }, extra: { retryAfter: 1 } });
const busy = (detail: string) => new AppError(503, 'sandbox_busy', 'Service unavailable', detail, { headers: { 'retry-after': '1' }, extra: { retryAfter: 1 } });

/**
 * Runs JavaScript in the worker pool under the deployment's caps, and meters
 * each run as a model call is metered: refused (402) while a budget that
 * applies is used up, then a usage event (source `sandbox`, no tokens, no
 * cost, its CPU milliseconds as the latency).
 */
export function createSandbox(deps: { settings: SandboxSettings; metering?: Metering; logger?: Logger }) {
  const { settings } = deps;
  let pool: Pool | undefined;
  /** Runs in flight and waiting, by user: one user's burst fills their share of the queue, not everyone's. */
  const runsOf = new Map<string, number>();
  const thePool = () => (pool ??= createPool({ size: settings.workers, queueSize: settings.queueSize, heartbeatMs: settings.heartbeatMs, logger: deps.logger }));

  function limits(request: RunInput) {
    const scriptBytes = Buffer.byteLength(request.code);
    if (scriptBytes > settings.maxScriptBytes) throw tooLarge(`The script is ${scriptBytes} bytes; the most is ${settings.maxScriptBytes}`);
    const cpuMs = request.timeoutMs ?? settings.defaultCpuMs;
    if (cpuMs > settings.maxCpuMs) throw ValidationError(`timeoutMs may be at most ${settings.maxCpuMs}`, 'sandbox_limit_exceeded', { max: settings.maxCpuMs });
    const memoryMb = request.memoryMb ?? settings.defaultMemoryMb;
    if (memoryMb > settings.maxMemoryMb) throw ValidationError(`memoryMb may be at most ${settings.maxMemoryMb}`, 'sandbox_limit_exceeded', { max: settings.maxMemoryMb });
    return { cpuMs, memoryMb };
  }

  /** One run, metered: refused while a budget that applies is used up, then a usage event. */
  async function metered(caller: Caller, request: RunInput, cpuMs: number, memoryMb: number): Promise<RunResult> {
    const meter = { source: 'sandbox' as const, userId: caller.userId, apiKeyId: caller.apiKeyId ?? null, projectId: caller.projectId ?? null };
    const call = await deps.metering?.begin(meter, { chain: [], messages: [] }, { micros: 0, tokens: 0 });
    let reply;
    try {
      reply = await thePool().run({
        code: request.code,
        inputJson: request.input === undefined ? null : JSON.stringify(request.input),
        memoryMb,
        cpuMs,
        wallMs: wallLimit(cpuMs),
        maxOutputBytes: settings.maxOutputBytes,
        maxResultBytes: settings.maxResultBytes,
      });
    } catch (err) {
      call?.release();
      if (err instanceof QueueFull) throw busy(`${err.message}; try again shortly`);
      throw err;
    }
    // What the worker calls JSON is the script's to shape (it can replace the harness's Promise): read it here, or fail the run.
    let result: unknown = null;
    let status = reply.status;
    let error = reply.error;
    if (reply.resultJson !== null) {
      try {
        result = JSON.parse(reply.resultJson);
      } catch {
        status = 'error';
        error = { code: 'result_not_json', message: 'The result could not be read as JSON' };
      }
      // As deep as a request body may be: the isolate serializes a value some thousands deep that the server's own
      // JSON.stringify (the answer, the model's tool result) runs out of stack on.
      if (status === 'ok' && deeperThan(result, MAX_DEPTH)) {
        status = 'error';
        error = { code: 'result_too_large', message: `The result is nested more than ${MAX_DEPTH} levels deep` };
      }
    }
    await call?.end(
      {
        status: status === 'ok' ? 'ok' : 'failed',
        provider: 'sandbox',
        model: 'javascript',
        usage: { inputTokens: 0, outputTokens: 0 },
        costMicros: 0,
        latencyMs: reply.cpuMs,
        ttftMs: null,
        attempts: [],
      },
      meter,
    );
    return {
      status,
      result: status === 'ok' ? result : null,
      output: reply.output,
      truncated: reply.truncated,
      ...(error && { error }),
      cpuMs: reply.cpuMs,
      wallMs: reply.wallMs,
    };
  }

  return {
    /** Runs a script to its end (or its limit); the script's own failures are a result with `status: 'error'`, not a throw. */
    async run(caller: Caller, request: RunInput): Promise<RunResult> {
      const { cpuMs, memoryMb } = limits(request);
      const mine = runsOf.get(caller.userId) ?? 0;
      if (mine >= settings.maxRunsPerUser) throw tooMany(`You have ${mine} runs running or waiting; the most is ${settings.maxRunsPerUser}. Try again when one has ended`);
      runsOf.set(caller.userId, mine + 1);
      try {
        return await metered(caller, request, cpuMs, memoryMb);
      } finally {
        const left = (runsOf.get(caller.userId) ?? 1) - 1;
        if (left) runsOf.set(caller.userId, left);
        else runsOf.delete(caller.userId);
      }
    },
    /** The most CPU time and memory a run may ask for: what a caller with its own limits (a project's, for a tool call) clamps to. */
    caps: { cpuMs: settings.maxCpuMs, memoryMb: settings.maxMemoryMb },
    /** The worker processes now alive (pid, busy), and the runs in flight and waiting. */
    workers: () => ({ processes: pool?.processes() ?? [], ...(pool?.load() ?? { running: 0, queued: 0 }) }),
    /** Ends the workers: part of a graceful shutdown. */
    close: () => pool?.close() ?? Promise.resolve(),
  };
}

export type Sandbox = ReturnType<typeof createSandbox>;
