import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { Logger } from '../../platform/observability/logger.ts';
import type { FromWorker, RunReply, RunRequest, ToWorker } from './protocol.ts';

const ENTRY = fileURLToPath(new URL('./worker-entry.ts', import.meta.url));

/** The worker's whole environment: nothing of the server's (no database URL, no master key, no provider key). */
const WORKER_ENV: NodeJS.ProcessEnv = { NODE_ENV: 'production' };

/**
 * isolated-vm needs the startup snapshot off under Node 20+; the worker's own
 * heap stays small (scripts live in their isolates, not in it).
 */
const WORKER_ARGS = ['--no-node-snapshot', '--max-old-space-size=128', '--disable-warning=ExperimentalWarning'];

/** Beyond its wall limit, how long the pool waits for a worker's answer before killing it. */
const REPLY_GRACE_MS = 2_000;

/** How long a new worker may take to say it is ready. */
const STARTUP_MS = 15_000;

export type Job = Omit<RunRequest, 'type' | 'id'>;

interface Pending {
  job: Job;
  resolve(reply: RunReply): void;
}

interface Worker {
  child: ChildProcess;
  ready: boolean;
  /** The run it is doing, with the timer that kills it if no answer comes. */
  current?: { id: number; pending: Pending; deadline: NodeJS.Timeout };
  lastPong: number;
  /** Why the pool is ending it, for the run in flight. */
  ending?: 'timeout' | 'unresponsive' | 'retired';
  stderr: string;
}

export class QueueFull extends Error {}

/** The answer for a run its worker never answered. */
const failed = (code: 'timeout' | 'sandbox_crashed', message: string, id = 0): RunReply => ({ type: 'result', id, status: 'error', resultJson: null, output: [], truncated: false, error: { code, message }, cpuMs: 0, wallMs: 0 });

/**
 * Worker processes, each running one script at a time; runs beyond them wait
 * in a bounded queue. A worker that exits, is killed, or misses three pings is
 * replaced; the run it had fails with `sandbox_crashed` (or `timeout` when it
 * was ended for overrunning), and nothing reaches the server's process.
 * Workers start on the first run, so a process that never runs a script (a
 * queue worker, a test of another module) never forks one.
 */
export function createPool(opts: { size: number; queueSize: number; heartbeatMs: number; logger?: Logger }) {
  const workers: Worker[] = [];
  const queue: Pending[] = [];
  let nextId = 1;
  let pingN = 0;
  let closed = false;
  let heartbeat: NodeJS.Timeout | undefined;

  function spawn(): Worker {
    const child = fork(ENTRY, [], { env: WORKER_ENV, execPath: process.execPath, execArgv: WORKER_ARGS, serialization: 'json', stdio: ['ignore', 'ignore', 'pipe', 'ipc'] });
    const worker: Worker = { child, ready: false, lastPong: Date.now(), stderr: '' };
    (child.stderr as unknown as { unref?(): void } | null)?.unref?.();
    child.stderr?.on('data', (chunk: Buffer) => {
      worker.stderr = (worker.stderr + chunk.toString()).slice(-2_000);
    });
    child.on('message', (message: FromWorker) => onMessage(worker, message));
    child.on('exit', (code, signal) => onExit(worker, code, signal));
    // An IPC write to a dying worker: its exit handler does the rest.
    child.on('error', (err) => opts.logger?.warn({ err, pid: child.pid }, 'sandbox worker error'));
    workers.push(worker);
    return worker;
  }

  function send(worker: Worker, message: ToWorker) {
    if (worker.child.connected) worker.child.send(message, (err) => err && kill(worker, 'unresponsive'));
  }

  function onMessage(worker: Worker, message: FromWorker) {
    worker.lastPong = Date.now();
    if (message.type === 'ready') {
      worker.ready = true;
      dispatch();
    } else if (message.type === 'result' && worker.current?.id === message.id) {
      const { pending, deadline } = worker.current;
      clearTimeout(deadline);
      worker.current = undefined;
      pending.resolve(message);
      // An isolate disposed for its memory has been seen to bring its process down later: start afresh.
      if (message.retire) kill(worker, 'retired');
      else dispatch();
    }
  }

  function onExit(worker: Worker, code: number | null, signal: NodeJS.Signals | null) {
    const index = workers.indexOf(worker);
    if (index >= 0) workers.splice(index, 1);
    if (worker.current) {
      const { pending, deadline, id } = worker.current;
      clearTimeout(deadline);
      worker.current = undefined;
      pending.resolve(
        worker.ending === 'timeout'
          ? failed('timeout', `The script did not finish within ${pending.job.wallMs} ms; its worker was replaced`, id)
          : worker.ending === 'unresponsive'
            ? failed('sandbox_crashed', 'The sandbox worker running the script stopped answering and was replaced', id)
            : failed('sandbox_crashed', 'The sandbox worker running the script stopped (it may have run out of memory) and was replaced', id),
      );
    }
    if (closed) return;
    if (!worker.ready) {
      // It never started (isolated-vm not loadable under this Node, say): fail what waits rather than fork
      // again and again; the next run tries afresh.
      opts.logger?.error({ pid: worker.child.pid, code, signal, stderr: worker.stderr || undefined }, 'a sandbox worker could not start');
      for (const pending of queue.splice(0)) pending.resolve(failed('sandbox_crashed', 'The sandbox could not start a worker; try again later'));
      holdWhileBusy();
      return;
    }
    if (worker.ending !== 'retired') opts.logger?.warn({ pid: worker.child.pid, code, signal, reason: worker.ending, stderr: worker.stderr || undefined }, 'sandbox worker exited; replacing it');
    dispatch();
  }

  function kill(worker: Worker, why: NonNullable<Worker['ending']>) {
    worker.ending ??= why;
    worker.child.kill('SIGKILL');
  }

  /** Hands queued runs to idle workers, forking up to the pool size. */
  function dispatch() {
    if (closed) return;
    while (queue.length) {
      const worker = workers.find((w) => w.ready && !w.current && !w.ending);
      if (!worker) break;
      const pending = queue.shift()!;
      const id = nextId++;
      const deadline = setTimeout(() => kill(worker, 'timeout'), pending.job.wallMs + REPLY_GRACE_MS);
      worker.current = { id, pending, deadline };
      send(worker, { type: 'run', id, ...pending.job });
    }
    // Enough workers starting for what waits, up to the pool size.
    const live = workers.filter((w) => !w.ending);
    let starting = live.filter((w) => !w.ready).length;
    for (let n = live.length; n < opts.size && starting < queue.length; n++, starting++) spawn();
    holdWhileBusy();
    startHeartbeat();
  }

  /** Idle workers keep nobody's process alive; while runs wait or run, they do (a script awaiting its result is not left hanging). */
  function holdWhileBusy() {
    const busy = queue.length > 0 || workers.some((w) => w.current);
    for (const { child } of workers) {
      if (busy) {
        child.ref();
        child.channel?.ref();
      } else {
        child.unref();
        child.channel?.unref();
      }
    }
  }

  function startHeartbeat() {
    if (heartbeat) return;
    heartbeat = setInterval(() => {
      const now = Date.now();
      for (const worker of workers) {
        if (worker.ending) continue;
        // A starting worker is given longer: Node and isolated-vm take a moment to load on a busy machine.
        const allowed = worker.ready ? opts.heartbeatMs * 3 : Math.max(opts.heartbeatMs * 3, STARTUP_MS);
        if (now - worker.lastPong > allowed) kill(worker, 'unresponsive');
        else if (worker.ready) send(worker, { type: 'ping', n: ++pingN });
      }
    }, opts.heartbeatMs);
    heartbeat.unref();
  }

  return {
    /** Runs a job on the next free worker; throws QueueFull when the queue is at its bound. Never rejects otherwise. */
    run(job: Job): Promise<RunReply> {
      if (closed) throw new QueueFull('The sandbox is shutting down');
      const busy = workers.filter((w) => w.current).length;
      if (busy + queue.length >= opts.size + opts.queueSize) throw new QueueFull('Every sandbox worker is busy and the queue is full');
      return new Promise<RunReply>((resolve) => {
        queue.push({ job, resolve });
        dispatch();
      });
    },
    /** The worker processes now alive, and whether each is running a script (for supervision and its tests). */
    processes: () => workers.filter((w) => !w.ending && w.child.pid).map((w) => ({ pid: w.child.pid!, busy: !!w.current })),
    /** Runs in flight and waiting. */
    load: () => ({ running: workers.filter((w) => w.current).length, queued: queue.length }),
    /** Ends every worker; runs still waiting fail as crashed. */
    async close() {
      closed = true;
      if (heartbeat) clearInterval(heartbeat);
      for (const pending of queue.splice(0)) pending.resolve(failed('sandbox_crashed', 'The sandbox shut down'));
      await Promise.all(
        workers.map(
          (w) =>
            new Promise<void>((resolve) => {
              if (w.child.exitCode !== null || w.child.signalCode !== null) return resolve();
              w.child.once('exit', () => resolve());
              w.child.ref();
              kill(w, 'retired');
            }),
        ),
      );
    },
  };
}

export type Pool = ReturnType<typeof createPool>;
