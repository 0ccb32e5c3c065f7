import cluster, { type Worker } from 'node:cluster';
import { availableParallelism } from 'node:os';
import { AggregatorRegistry, type PrometheusContentType } from 'prom-client';
import type { Config } from './config.ts';
import { ConfigError } from './errors.ts';
import { answerMetricsRequests } from './platform/observability/cluster-metrics.ts';
import type { Logger } from './platform/observability/logger.ts';

/**
 * `--processes N`: several copies of one role behind one port, through Node's
 * cluster module. The primary forks them, replaces one that dies and passes a
 * shutdown on; it opens no database or Redis connection of its own (each
 * worker migrates on start, as any instance does: PostgreSQL runs them one
 * at a time under an advisory lock).
 */

/** A bad command line: the CLI prints it with the usage text and exits 64. */
export class UsageError extends Error {}

/** Restart delays for a worker that keeps dying: doubled per quick death, capped. */
const RESTART_FIRST_MS = 100;
const RESTART_MAX_MS = 30_000;
/** A worker that ran this long before dying counts as healthy: its replacement starts after the first delay again. */
const STABLE_MS = 30_000;
/** How long the primary waits for its workers to drain (each has 10 s of its own) before killing them. */
const SHUTDOWN_MS = 15_000;

type Message = { parley?: 'ready' | 'shutdown' };

/** The options of `start`, `serve` and `worker`: `--processes N` or `--processes=N`. */
export function parseRunOptions(args: string[]): { processes?: number } {
  let processes: number | undefined;
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    const [name, inline] = arg.startsWith('--processes=') ? ['--processes', arg.slice('--processes='.length)] : [arg, undefined];
    if (name !== '--processes') throw new UsageError(`Unknown option "${arg}"`);
    const value = inline ?? args[++i];
    if (value === undefined || !/^[1-9]\d{0,3}$/.test(value)) throw new UsageError(`--processes needs a whole number from 1 to 9999, got ${value === undefined ? 'nothing' : `"${value}"`}`);
    processes = Number(value);
  }
  return { processes };
}

/**
 * How many processes to run: the flag, else PROCESSES, else one per CPU — on
 * PostgreSQL with Redis only. Embedded (PGlite keeps its database inside one
 * process), and PostgreSQL without Redis (rate limits, stream resume and
 * real-time fan-out would stay inside each process), run one, and say why in
 * `note`; asking for more there is refused.
 */
export function planProcesses(config: Config, flag: number | undefined): { count: number; note?: string } {
  const asked = flag ?? config.processes;
  const missing = !config.databaseUrl
    ? 'the embedded database (PGlite) lives in one process'
    : !config.redisUrl
      ? 'PostgreSQL without Redis keeps rate limits, stream resume and real-time fan-out inside one process'
      : undefined;
  if (!missing) return { count: asked ?? availableParallelism() };
  if (asked === undefined || asked === 1) return { count: 1, note: `one process: ${missing}; set DATABASE_URL and REDIS_URL to run several` };
  const message = `${flag !== undefined ? `--processes ${flag}` : `PROCESSES=${asked}`} needs DATABASE_URL and REDIS_URL: ${missing}. Run with --processes 1, or point Parley at PostgreSQL and Redis.`;
  throw flag !== undefined ? new UsageError(message) : new ConfigError(`Invalid configuration:\n  PROCESSES: ${message}`);
}

/** In a forked worker: tells the primary once this process serves, and drains when the primary asks. */
export function followPrimary(shutdown: () => void): void {
  if (!cluster.isWorker) return;
  process.on('message', (msg: Message) => {
    if (msg?.parley === 'shutdown') shutdown();
  });
  process.send!({ parley: 'ready' } satisfies Message);
}

interface Slot {
  worker?: Worker;
  startedAt: number;
  ready: boolean;
  /** Deaths in a row, each soon after its start. */
  quickDeaths: number;
  restart?: NodeJS.Timeout;
}

/**
 * The primary: forks `count` workers (this same command), restarts one that
 * exits unasked with a growing delay, and on SIGTERM/SIGINT asks each to
 * drain and resolves, once all have exited, with 0 when every one exited
 * cleanly. A second signal kills them at once. A worker that dies before any
 * has started (bad database URL, port taken) stops the whole cluster: a
 * start that cannot work should fail, not loop.
 */
export function runPrimary({ count, logger }: { count: number; logger: Logger }): Promise<number> {
  return new Promise((resolve) => {
    const slots: Slot[] = Array.from({ length: count }, () => ({ startedAt: 0, ready: false, quickDeaths: 0 }));
    let anyReady = false;
    let stopping = false;
    let failed = false;
    let deadline: NodeJS.Timeout | undefined;
    const alive = () => slots.filter((s) => s.worker);
    // A worker asked for /metrics answers with every worker's.
    const metrics = new AggregatorRegistry<PrometheusContentType>();

    const fork = (slot: Slot) => {
      const worker = cluster.fork();
      Object.assign(slot, { worker, startedAt: Date.now(), ready: false });
      // A message to a worker that has just died fails here; its exit follows.
      worker.on('error', (err) => logger.warn({ err, worker: worker.process.pid }, 'worker channel error'));
      answerMetricsRequests(worker, metrics);
      worker.on('message', (msg: Message) => {
        if (msg?.parley !== 'ready') return;
        slot.ready = anyReady = true;
        logger.info({ worker: worker.process.pid }, 'worker ready');
      });
      worker.on('exit', (code, signal) => {
        slot.worker = undefined;
        const pid = worker.process.pid;
        if (stopping) {
          // One still starting was stopped by a signal: nothing was in flight there.
          if (code !== 0 && slot.ready) failed = true;
          if (!alive().length) finish();
          return;
        }
        if (!anyReady) {
          logger.error({ worker: pid, code, signal }, 'a worker exited before any had started; stopping');
          failed = true;
          return stop();
        }
        slot.quickDeaths = Date.now() - slot.startedAt >= STABLE_MS ? 1 : slot.quickDeaths + 1;
        const delayMs = Math.min(RESTART_MAX_MS, RESTART_FIRST_MS * 2 ** (slot.quickDeaths - 1));
        logger.warn({ worker: pid, code, signal, restartInMs: delayMs }, 'worker exited unexpectedly; starting another');
        slot.restart = setTimeout(() => fork(slot), delayMs);
      });
    };

    const stop = () => {
      stopping = true;
      for (const slot of slots) {
        clearTimeout(slot.restart);
        const worker = slot.worker;
        if (!worker) continue;
        // A ready worker drains through its close-with-grace path; one still starting has nothing to drain.
        if (slot.ready && worker.isConnected()) worker.send({ parley: 'shutdown' } satisfies Message);
        else worker.process.kill('SIGTERM');
      }
      if (!alive().length) return finish();
      deadline = setTimeout(() => {
        logger.error({ workers: alive().map((s) => s.worker!.process.pid) }, `workers still running ${SHUTDOWN_MS / 1000} s after the shutdown began; killing them`);
        kill();
      }, SHUTDOWN_MS);
    };
    const kill = () => {
      failed = true;
      for (const slot of alive()) slot.worker!.process.kill('SIGKILL');
    };
    const onSignal = (signal: NodeJS.Signals) => {
      if (stopping) {
        logger.error({ signal }, 'second signal: killing the workers');
        return kill();
      }
      logger.info({ signal }, 'shutting down: each worker drains');
      stop();
    };
    const finish = () => {
      clearTimeout(deadline);
      process.off('SIGTERM', onSignal);
      process.off('SIGINT', onSignal);
      logger.info({ code: failed ? 1 : 0 }, 'all workers exited');
      resolve(failed ? 1 : 0);
    };

    process.on('SIGTERM', onSignal);
    process.on('SIGINT', onSignal);
    for (const slot of slots) fork(slot);
  });
}
