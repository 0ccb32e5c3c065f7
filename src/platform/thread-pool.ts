import { MessageChannel, type MessagePort } from 'node:worker_threads';
import { Piscina } from 'piscina';

/** A task that ran past its time on its thread: the thread was ended (another starts for the next task). */
export class ThreadTimeout extends Error {
  constructor(timeoutMs: number) {
    super(`the task ran past its ${timeoutMs} ms on its thread and was stopped`);
    this.name = 'ThreadTimeout';
  }
}

export interface ThreadPool<T, R> {
  /**
   * `task` run by the thread file's default export (made with `threadTask`). Rejects with ThreadTimeout past the
   * time allowed, with `signal`'s reason when it aborts first (waiting or running: a running task's thread is
   * ended), or with what the task threw.
   */
  run(task: T, signal?: AbortSignal): Promise<R>;
  /** Ends the threads: tasks running or waiting fail, later ones too. */
  close(): Promise<void>;
}

/**
 * Work that would stall the event loop (a search that backtracks, a huge page), on worker threads (piscina): at most
 * `threads` tasks at once, the rest queued in order. Each task is stopped after `timeoutMs` by ending its thread, and
 * another takes its place. That clock starts when a thread takes the task (the thread says so: piscina has no time
 * limit of its own, and a signal's would count the wait), so a task queued behind slow ones still gets its whole time.
 * The threads start with the first task and stay, idle ones not keeping the process alive: all of them, because
 * piscina replaces an ended thread only up to `minThreads`, and the queue would wait on fewer threads (none: forever).
 */
export function createThreadPool<T, R>(opts: { worker: URL; threads: number; timeoutMs: number }): ThreadPool<T, R> {
  let pool: Piscina<{ task: T; started: MessagePort }, R> | undefined;
  /** The tasks no thread has taken yet: each one's way to stop it. */
  const waiting = new Set<AbortController>();
  let closed = false;
  const threads = () =>
    (pool ??= new Piscina<{ task: T; started: MessagePort }, R>({ filename: opts.worker.href, minThreads: opts.threads, maxThreads: opts.threads }).on('error', (err: Error) => {
      // A thread failed outside any task: one that could not even start. piscina starts no other until the next
      // task, so what waits would wait forever: it fails now, and the next task tries anew.
      for (const task of waiting) task.abort(err);
    }));
  return {
    async run(task, signal) {
      if (closed) throw new Error('the thread pool is closed');
      const stopped = new AbortController();
      const stop = signal ? AbortSignal.any([signal, stopped.signal]) : stopped.signal;
      const { port1: taken, port2: started } = new MessageChannel();
      let timer: NodeJS.Timeout | undefined;
      taken.once('message', () => {
        waiting.delete(stopped);
        timer = setTimeout(() => stopped.abort(new ThreadTimeout(opts.timeoutMs)), opts.timeoutMs);
      });
      waiting.add(stopped);
      try {
        return await threads().run({ task, started }, { signal: stop, transferList: [started] });
      } catch (err) {
        // piscina rejects an aborted task with its own AbortError: the caller gets why it was stopped.
        throw stop.aborted ? stop.reason : err;
      } finally {
        waiting.delete(stopped);
        clearTimeout(timer);
        taken.close();
      }
    },
    async close() {
      closed = true;
      await pool?.destroy();
    },
  };
}

/** A thread file's default export: tells the pool the task is taken (its clock starts), then does it. */
export function threadTask<T, R>(work: (task: T) => R) {
  return ({ task, started }: { task: T; started: MessagePort }): R => {
    started.postMessage(null);
    return work(task);
  };
}
