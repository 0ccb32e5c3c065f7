import { Worker } from 'node:worker_threads';
import type { PageText } from './page-text.ts';

const ENTRY = new URL('./page-text-worker.ts', import.meta.url);

/** A conversion that gave no page: past its time (`timeout`: its thread was ended), or the converter failed. */
export class ConversionFailed extends Error {
  readonly reason: 'timeout' | 'failed';
  constructor(reason: 'timeout' | 'failed', message: string) {
    super(message);
    this.name = 'ConversionFailed';
    this.reason = reason;
  }
}

export interface HtmlConverter {
  /** The page's title and text (page-text.ts), converted on a thread within the time allowed; rejects with `signal`'s reason when it aborts first. */
  convert(html: string, base: string, signal: AbortSignal): Promise<PageText>;
  close(): Promise<void>;
}

interface Task {
  id: number;
  html: string;
  base: string;
  signal: AbortSignal;
  resolve(page: PageText): void;
  reject(err: unknown): void;
}

interface Thread {
  worker: Worker;
  ready: boolean;
  running?: { task: Task; timer: NodeJS.Timeout };
}

/**
 * Turns fetched HTML into text on threads of their own. A page of megabytes of paragraphs takes the converter
 * seconds, and a hostile page can be made to take far longer: on the server's own thread every request would wait
 * for it. Here at most `threads` conversions run at once (the rest wait their turn, until their fetch's signal gives
 * up), each stopped after `timeoutMs`: its thread is ended and a new one starts for the next page. The clock starts
 * when a thread takes the page, not while it waits its turn or a thread starts.
 */
export function createHtmlConverter(opts: { threads: number; timeoutMs: number }): HtmlConverter {
  const threads: Thread[] = [];
  const queue: Task[] = [];
  let nextId = 1;
  let closed = false;

  /** Ends a thread (past its time, its fetch gone, or failed); its page, if any, is the caller's to settle. */
  const discard = (thread: Thread) => {
    const at = threads.indexOf(thread);
    if (at < 0) return;
    threads.splice(at, 1);
    if (thread.running) clearTimeout(thread.running.timer);
    thread.running = undefined;
    void thread.worker.terminate();
  };

  /** The thread's page is done: the caller gets `outcome`, the thread the next page. */
  const finish = (thread: Thread, outcome: { page: PageText } | { error: unknown }) => {
    const running = thread.running;
    if (!running) return;
    clearTimeout(running.timer);
    thread.running = undefined;
    running.task.signal.removeEventListener('abort', onAbort);
    if ('page' in outcome) running.task.resolve(outcome.page);
    else running.task.reject(outcome.error);
  };

  function onAbort(this: AbortSignal) {
    const waiting = queue.findIndex((task) => task.signal === this);
    if (waiting >= 0) {
      const [task] = queue.splice(waiting, 1);
      return task!.reject(this.reason);
    }
    const thread = threads.find((t) => t.running?.task.signal === this);
    if (!thread) return;
    const task = thread.running!.task;
    discard(thread);
    task.reject(this.reason);
    pump();
  }

  const start = () => {
    const thread: Thread = { worker: new Worker(ENTRY), ready: false };
    threads.push(thread);
    const w = thread.worker;
    w.on('message', (message: { ready?: true; id?: number; page?: PageText; error?: string }) => {
      if (!threads.includes(thread)) return;
      if (message.ready) thread.ready = true;
      else if (thread.running?.task.id === message.id) {
        finish(thread, message.page ? { page: message.page } : { error: new ConversionFailed('failed', `the page's HTML could not be converted: ${message.error}`) });
      }
      pump();
    });
    const failed = (err: Error) => {
      if (!threads.includes(thread)) return;
      const task = thread.running?.task;
      const started = thread.ready;
      discard(thread);
      task?.signal.removeEventListener('abort', onAbort);
      task?.reject(new ConversionFailed('failed', `the page's HTML could not be converted: ${err.message}`));
      // A thread that could not even start would fail again: what waits fails now, the next page tries anew.
      if (!started) for (const waiting of queue.splice(0)) waiting.reject(err);
      pump();
    };
    w.on('error', failed);
    w.on('exit', (code) => failed(new Error(`the conversion thread exited (${code})`)));
    // An idle thread does not keep the process alive (listeners ref it: unref after them); a page in flight does.
    w.unref();
  };

  const idle = () => threads.find((t) => t.ready && !t.running);

  const pump = () => {
    if (closed) return;
    for (let thread = idle(); thread && queue.length; thread = idle()) {
      const task = queue.shift()!;
      const taken = thread;
      const timer = setTimeout(() => {
        discard(taken);
        task.signal.removeEventListener('abort', onAbort);
        task.reject(new ConversionFailed('timeout', `the page's HTML was not converted to text within ${opts.timeoutMs} ms`));
        pump();
      }, opts.timeoutMs);
      taken.running = { task, timer };
      taken.worker.postMessage({ id: task.id, html: task.html, base: task.base });
    }
    const starting = threads.filter((t) => !t.ready).length;
    for (let more = Math.min(queue.length - starting, opts.threads - threads.length); more > 0; more--) start();
    // A thread with a page, or starting for one, keeps the process alive; an idle one does not.
    for (const t of threads) {
      if (t.running || (!t.ready && queue.length)) t.worker.ref();
      else t.worker.unref();
    }
  };

  return {
    convert(html, base, signal) {
      if (closed) return Promise.reject(new ConversionFailed('failed', 'the conversion threads are closed'));
      if (signal.aborted) return Promise.reject(signal.reason);
      return new Promise<PageText>((resolve, reject) => {
        queue.push({ id: nextId++, html, base, signal, resolve, reject });
        signal.addEventListener('abort', onAbort, { once: true });
        pump();
      });
    },
    async close() {
      closed = true;
      const error = new ConversionFailed('failed', 'the conversion threads are closed');
      for (const task of queue.splice(0)) task.reject(error);
      const ending = threads.splice(0);
      for (const thread of ending) {
        if (thread.running) clearTimeout(thread.running.timer);
        thread.running?.task.reject(error);
      }
      await Promise.all(ending.map((thread) => thread.worker.terminate()));
    },
  };
}
