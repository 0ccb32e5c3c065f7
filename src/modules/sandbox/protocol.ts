/**
 * The messages between the pool and a worker process, over the fork's IPC
 * channel (JSON serialization). Types only: the worker entry imports nothing
 * of the server's.
 */

export type OutputLevel = 'log' | 'info' | 'warn' | 'error';

export interface OutputLine {
  level: OutputLevel;
  message: string;
}

/** Why a run failed: a stable code, as in the API's `error.code`. */
export type RunErrorCode = 'script_error' | 'syntax_error' | 'timeout' | 'memory_limit' | 'result_not_json' | 'result_too_large' | 'sandbox_crashed';

export interface RunRequest {
  type: 'run';
  id: number;
  code: string;
  /** The input as JSON, or null for none. */
  inputJson: string | null;
  memoryMb: number;
  cpuMs: number;
  /** Past this the isolate is disposed, whatever it is doing (awaiting forever included). */
  wallMs: number;
  maxOutputBytes: number;
  maxResultBytes: number;
}

export interface RunReply {
  type: 'result';
  id: number;
  status: 'ok' | 'error';
  /** The result as JSON ("null" when the script gave nothing). */
  resultJson: string | null;
  output: OutputLine[];
  truncated: boolean;
  error?: { code: RunErrorCode; message: string };
  cpuMs: number;
  wallMs: number;
  /** The worker asks to be replaced (its isolate was ended from outside). */
  retire?: boolean;
}

export type ToWorker = RunRequest | { type: 'ping'; n: number };
export type FromWorker = RunReply | { type: 'pong'; n: number } | { type: 'ready' };
