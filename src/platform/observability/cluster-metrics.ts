import cluster, { type Worker } from 'node:cluster';
import { randomUUID } from 'node:crypto';
import { AggregatorRegistry, prometheusContentType, type PrometheusContentType, type Registry } from 'prom-client';

/**
 * /metrics under `--processes N`. A scrape reaches one worker (the cluster
 * hands out connections), whose counters alone would jump from scrape to
 * scrape; so that worker asks the primary, which gathers every worker's
 * registry over IPC (prom-client's AggregatorRegistry: counters summed, each
 * worker's `parley_process_info{pid}` kept) and answers with the whole.
 */

type Request = { parley: 'metrics'; id: string };
type Reply = { parley: 'metrics'; id: string; text?: string; error?: string };

/** How long a worker waits for the primary's answer; prom-client gives each worker 5 s to answer the primary. */
const ASK_MS = 7_000;

/** In a worker: its registry is what the primary gathers. */
export function offerMetrics(registry: Registry): void {
  if (!cluster.isWorker) return;
  AggregatorRegistry.setRegistries([registry]);
  // Constructed for its side effect, as prom-client intends: in a worker, it starts answering the primary's requests.
  new AggregatorRegistry();
}

/** In a worker: every worker's metrics, from the primary. Undefined outside a cluster. */
export function clusterMetrics(): Promise<string> | undefined {
  if (!cluster.isWorker || !process.send) return undefined;
  const id = randomUUID();
  return new Promise((resolve, reject) => {
    const done = (fn: () => void) => {
      clearTimeout(timer);
      process.off('message', onMessage);
      fn();
    };
    const onMessage = (msg: Reply) => {
      if (msg?.parley !== 'metrics' || msg.id !== id) return;
      done(() => (msg.text !== undefined ? resolve(msg.text) : reject(new Error(msg.error ?? 'no metrics'))));
    };
    const timer = setTimeout(() => done(() => reject(new Error('the primary did not answer with the metrics in time'))), ASK_MS);
    process.on('message', onMessage);
    process.send!({ parley: 'metrics', id } satisfies Request);
  });
}

/** In the primary: answers a worker's request for the cluster's metrics. */
export function answerMetricsRequests(worker: Worker, aggregator: AggregatorRegistry<PrometheusContentType>): void {
  worker.on('message', (msg: Request) => {
    if (msg?.parley !== 'metrics') return;
    aggregator.clusterMetrics().then(
      (text) => worker.isConnected() && worker.send({ parley: 'metrics', id: msg.id, text } satisfies Reply),
      (err: Error) => worker.isConnected() && worker.send({ parley: 'metrics', id: msg.id, error: err.message } satisfies Reply),
    );
  });
}

/** The content type of what clusterMetrics() answers. */
export const clusterContentType = prometheusContentType;
