import { z } from 'zod';
import { ConfigError } from '../../errors.ts';
import { envInt, envMs } from '../../platform/config/env.ts';

export interface SandboxSettings {
  /** Worker processes, each running one script at a time: the concurrency of runs. */
  workers: number;
  /** Runs waiting for a worker beyond these are refused (503 `sandbox_busy`). */
  queueSize: number;
  /** Runs one user may have running and waiting at once, in one process; beyond them a 429 `too_many_runs`. */
  maxRunsPerUser: number;
  /** Heap of a run's isolate when the request names none, and the most one may ask for. */
  defaultMemoryMb: number;
  maxMemoryMb: number;
  /** CPU time of a run when the request names none, and the most one may ask for. */
  defaultCpuMs: number;
  maxCpuMs: number;
  maxScriptBytes: number;
  /** Console output kept per run; what goes beyond is dropped and the run marked `truncated`. */
  maxOutputBytes: number;
  /** The largest result (as JSON) a run may return. */
  maxResultBytes: number;
  /** How often the pool pings each worker; one silent for three pings is killed and replaced. */
  heartbeatMs: number;
}

export const sandboxEnv = {
  SANDBOX_WORKERS: envInt(1, 64).default(2),
  SANDBOX_QUEUE_SIZE: envInt(0, 100_000).default(100),
  SANDBOX_MAX_RUNS_PER_USER: envInt(1, 100_000).default(4),
  SANDBOX_DEFAULT_MEMORY_MB: envInt(8, 4096).default(16),
  SANDBOX_MAX_MEMORY_MB: envInt(8, 4096).default(128),
  SANDBOX_DEFAULT_CPU_MS: envMs(10, 600_000).default(500),
  SANDBOX_MAX_CPU_MS: envMs(10, 600_000).default(5_000),
  SANDBOX_MAX_SCRIPT_BYTES: envInt(1, 10_000_000).default(65_536),
  SANDBOX_MAX_OUTPUT_BYTES: envInt(0, 100_000_000).default(65_536),
  SANDBOX_MAX_RESULT_BYTES: envInt(16, 100_000_000).default(1_048_576),
  SANDBOX_HEARTBEAT_MS: envMs(50, 60_000).default(1_000),
};

const sandboxEnvObject = z.object(sandboxEnv);

export function sandboxSettings(e: z.output<typeof sandboxEnvObject>): SandboxSettings {
  if (e.SANDBOX_DEFAULT_MEMORY_MB > e.SANDBOX_MAX_MEMORY_MB) throw new ConfigError('SANDBOX_DEFAULT_MEMORY_MB must not exceed SANDBOX_MAX_MEMORY_MB');
  if (e.SANDBOX_DEFAULT_CPU_MS > e.SANDBOX_MAX_CPU_MS) throw new ConfigError('SANDBOX_DEFAULT_CPU_MS must not exceed SANDBOX_MAX_CPU_MS');
  return {
    workers: e.SANDBOX_WORKERS,
    queueSize: e.SANDBOX_QUEUE_SIZE,
    maxRunsPerUser: e.SANDBOX_MAX_RUNS_PER_USER,
    defaultMemoryMb: e.SANDBOX_DEFAULT_MEMORY_MB,
    maxMemoryMb: e.SANDBOX_MAX_MEMORY_MB,
    defaultCpuMs: e.SANDBOX_DEFAULT_CPU_MS,
    maxCpuMs: e.SANDBOX_MAX_CPU_MS,
    maxScriptBytes: e.SANDBOX_MAX_SCRIPT_BYTES,
    maxOutputBytes: e.SANDBOX_MAX_OUTPUT_BYTES,
    maxResultBytes: e.SANDBOX_MAX_RESULT_BYTES,
    heartbeatMs: e.SANDBOX_HEARTBEAT_MS,
  };
}
