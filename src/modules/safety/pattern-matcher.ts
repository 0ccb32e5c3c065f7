import { Worker } from 'node:worker_threads';
import type { Logger } from '../../platform/observability/logger.ts';

const ENTRY = new URL('./pattern-worker.ts', import.meta.url);

/** The index of the first pattern that matched (-1: none), or `timeout` when the search ran past its time. */
export type PatternVerdict = number | 'timeout';

export interface PatternMatcher {
  /** The first of `patterns` (run with `iu`) that matches `text`, searched off the event loop within the time allowed. */
  firstMatch(text: string, patterns: readonly string[]): Promise<PatternVerdict>;
  close(): Promise<void>;
}

interface Task {
  id: number;
  text: string;
  patterns: readonly string[];
  resolve(verdict: PatternVerdict): void;
  reject(err: Error): void;
}

/**
 * Runs safety patterns on a thread of their own, one search at a time, each stopped after `timeoutMs`.
 * JavaScript's engine backtracks: the shape check at save time (rules.ts) rules out the exponential
 * patterns, but an unanchored search is still tried from every position, so `\d*x` or `\d+-\d+` on
 * 100,000 digits takes seconds to minutes. On the server's own thread that would stop every request; here
 * only this search waits, and past its time the thread is ended (a new one starts for the next search).
 * The clock starts when the thread takes the search, not while it waits its turn or the thread starts.
 */
export function createPatternMatcher(opts: { timeoutMs: number; logger: Logger }): PatternMatcher {
  let worker: Worker | undefined;
  let ready = false;
  let nextId = 1;
  const queue: Task[] = [];
  let current: { task: Task; timer: NodeJS.Timeout } | undefined;
  let closed = false;

  const settle = (outcome: { verdict: PatternVerdict } | { error: Error }) => {
    const running = current;
    if (!running) return;
    clearTimeout(running.timer);
    current = undefined;
    worker?.unref();
    if ('verdict' in outcome) running.task.resolve(outcome.verdict);
    else running.task.reject(outcome.error);
  };

  /** Ends the thread (stuck in a search, or failed); the next search starts another. */
  const discard = (w: Worker) => {
    if (worker !== w) return;
    worker = undefined;
    ready = false;
    void w.terminate();
  };

  const start = () => {
    const w = new Worker(ENTRY);
    worker = w;
    w.on('message', (message: { ready?: true; id?: number; index?: number }) => {
      if (worker !== w) return;
      if (message.ready) ready = true;
      else if (current && message.id === current.task.id) settle({ verdict: message.index! });
      pump();
    });
    const failed = (err: Error) => {
      if (worker !== w) return;
      opts.logger.error({ err }, 'the safety patterns thread failed');
      const started = ready;
      discard(w);
      settle({ error: err });
      // A thread that could not even start would fail again: what waits fails now, the next search tries anew.
      if (!started) for (const task of queue.splice(0)) task.reject(err);
      pump();
    };
    w.on('error', failed);
    w.on('exit', (code) => failed(new Error(`the safety patterns thread exited (${code})`)));
    // An idle thread does not keep the process alive (listeners ref it: unref after them); a search in flight does.
    w.unref();
  };

  const pump = () => {
    if (closed || current || !queue.length) return;
    if (!worker) start();
    worker!.ref();
    if (!ready) return;
    const task = queue.shift()!;
    const w = worker!;
    const timer = setTimeout(() => {
      opts.logger.warn({ timeoutMs: opts.timeoutMs, chars: task.text.length, patterns: task.patterns.length }, 'safety patterns ran past their time on a text; the search was stopped');
      discard(w);
      settle({ verdict: 'timeout' });
      pump();
    }, opts.timeoutMs);
    current = { task, timer };
    w.postMessage({ id: task.id, text: task.text, patterns: task.patterns });
  };

  return {
    firstMatch(text, patterns) {
      if (!patterns.length) return Promise.resolve(-1);
      if (closed) return Promise.reject(new Error('the safety patterns thread is closed'));
      return new Promise<PatternVerdict>((resolve, reject) => {
        queue.push({ id: nextId++, text, patterns, resolve, reject });
        pump();
      });
    },
    async close() {
      closed = true;
      const w = worker;
      worker = undefined;
      for (const task of queue.splice(0)) task.reject(new Error('the safety patterns thread is closed'));
      settle({ error: new Error('the safety patterns thread is closed') });
      await w?.terminate();
    },
  };
}
