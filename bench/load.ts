import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import autocannon from 'autocannon';

/**
 * One autocannon run in a thread of its own, so the load generator does not
 * share the event loop of the in-process server it measures.
 */
export interface Scenario {
  url: string;
  method: 'GET' | 'POST';
  path: string;
  connections: number;
  durationSeconds: number;
  headers?: Record<string, string>;
  body?: string;
  /**
   * Refresh tokens to start chains from: each connection refreshes with the
   * token its previous refresh returned, taking a fresh one every CHAIN steps.
   */
  refreshTokens?: string[];
}

export interface Figures {
  requests: number;
  rps: number;
  p50: number;
  p99: number;
  /** Responses that were not 2xx, plus connection errors (timeouts included). */
  failed: number;
  /** 2xx responses. */
  ok: number;
}

const CHAIN = 50;
interface Chain {
  token?: string;
}

// Exported by autocannon but missing from @types/autocannon.
const aggregate = (autocannon as unknown as { aggregateResult(results: unknown[], opts: autocannon.Options): autocannon.Result }).aggregateResult;

export function runScenario(scenario: Scenario): Promise<Figures> {
  return new Promise((resolve, reject) => {
    const worker = new Worker(new URL(import.meta.url), { workerData: scenario });
    worker.once('message', resolve);
    worker.once('error', reject);
    worker.once('exit', (code) => code !== 0 && reject(new Error(`load worker exited with ${code}`)));
  });
}

async function run(s: Scenario): Promise<Figures> {
  const headers = { ...s.headers, ...(s.body || s.refreshTokens ? { 'content-type': 'application/json' } : {}) };
  let requests: autocannon.Request[] | undefined;
  if (s.refreshTokens) {
    const pool = [...s.refreshTokens];
    const step: autocannon.Request = {
      setupRequest: (req, context) => {
        const ctx = context as Chain;
        ctx.token ??= pool.pop();
        return { ...req, body: JSON.stringify({ refreshToken: ctx.token ?? 'rt_pool_exhausted' }) };
      },
      onResponse: (status, body, context) => {
        (context as Chain).token = status === 200 ? JSON.parse(body).refreshToken : undefined;
      },
    };
    // autocannon resets a connection's context after the last request of the list: a chain is CHAIN refreshes long.
    requests = Array(CHAIN).fill(step);
  }
  const opts: autocannon.Options = {
    url: s.url + s.path,
    method: s.method,
    headers,
    body: s.body,
    requests,
    connections: s.connections,
    duration: s.durationSeconds,
  };
  // Off the main thread autocannon returns raw histograms (its own workers mode); aggregate them here.
  const result = aggregate([await autocannon(opts)], opts);
  return {
    requests: result.requests.total,
    rps: result['2xx'] / (result.duration || s.durationSeconds),
    p50: result.latency.p50,
    p99: result.latency.p99,
    failed: result.non2xx + result.errors,
    ok: result['2xx'],
  };
}

if (!isMainThread) parentPort!.postMessage(await run(workerData as Scenario));

/** Enough chain starts for `seconds` of refreshing at up to `maxRps`. */
export const refreshPoolSize = (seconds: number, maxRps: number, connections: number) => Math.ceil((seconds * maxRps) / CHAIN) + connections;
