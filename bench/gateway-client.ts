// The gateway bench's load client, in a process of its own so that neither its
// CPU nor its memory is counted as Parley's. Jobs arrive over IPC.
import { Agent, request } from 'node:http';

export interface LatencyJob {
  kind: 'latency';
  url: string;
  headers: Record<string, string>;
  body: string;
  count: number;
}

export interface StreamsJob {
  kind: 'streams';
  url: string;
  headers: Record<string, string>;
  body: string;
  concurrency: number;
}

/** `count` requests over `concurrency` connections, as fast as they are answered: the CPU each costs the server. */
export interface RequestsJob {
  kind: 'requests';
  url: string;
  headers: Record<string, string>;
  body: string;
  count: number;
  concurrency: number;
}

/**
 * `concurrency` streams held open for `seconds`: the first ones opened evenly over
 * `rampMs`, each replaced by a new one as soon as it ends. TTFT counts only streams
 * opened after the ramp, when the load is steady.
 */
export interface SteadyJob {
  kind: 'steady';
  url: string;
  headers: Record<string, string>;
  body: string;
  concurrency: number;
  rampMs: number;
  seconds: number;
}

export interface StreamResult {
  /** ms from request start to the first content delta. */
  ttft: number[];
  /** ms from request start to the end of the stream. */
  durations: number[];
  chunks: number[];
  failed: number;
}

const agent = new Agent({ keepAlive: true, maxSockets: Infinity });

function once(job: { url: string; headers: Record<string, string>; body: string }, onData?: (text: string) => void): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(job.url, { method: 'POST', agent, headers: { ...job.headers, 'content-type': 'application/json' } }, (res) => {
      res.setEncoding('utf8');
      res.on('data', (d: string) => onData?.(d));
      res.on('end', () => resolve(res.statusCode ?? 0));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(job.body);
  });
}

async function latency(job: LatencyJob): Promise<number[]> {
  const samples: number[] = [];
  for (let i = 0; i < job.count; i++) {
    const t0 = performance.now();
    const status = await once(job);
    if (status !== 200) throw new Error(`status ${status}`);
    samples.push(performance.now() - t0);
  }
  return samples;
}

async function requests(job: RequestsJob): Promise<{ ok: number; failed: number; seconds: number }> {
  let next = 0;
  let ok = 0;
  let failed = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: job.concurrency }, async () => {
      while (next++ < job.count) {
        const status = await once(job).catch(() => 0);
        if (status === 200) ok++;
        else failed++;
      }
    }),
  );
  return { ok, failed, seconds: (performance.now() - t0) / 1000 };
}

/** One stream, its figures added to `result` when `record` says so at its start. */
async function stream(job: { url: string; headers: Record<string, string>; body: string }, result: StreamResult, record = true): Promise<void> {
  const t0 = performance.now();
  let first: number | undefined;
  let chunks = 0;
  try {
    const status = await once(job, (text) => {
      const n = text.match(/"content":"[^"]/g)?.length ?? 0;
      if (n && first === undefined) first = performance.now() - t0;
      chunks += n;
    });
    if (status !== 200 || first === undefined) throw new Error(`status ${status}`);
    if (!record) return;
    result.ttft.push(first);
    result.durations.push(performance.now() - t0);
    result.chunks.push(chunks);
  } catch {
    result.failed++;
  }
}

async function streams(job: StreamsJob): Promise<StreamResult> {
  const result: StreamResult = { ttft: [], durations: [], chunks: [], failed: 0 };
  await Promise.all(Array.from({ length: job.concurrency }, () => stream(job, result)));
  return result;
}

async function steady(job: SteadyJob): Promise<StreamResult> {
  const result: StreamResult = { ttft: [], durations: [], chunks: [], failed: 0 };
  const start = performance.now();
  const end = start + job.seconds * 1000;
  await Promise.all(
    Array.from({ length: job.concurrency }, async (_, i) => {
      await new Promise((resolve) => setTimeout(resolve, (i * job.rampMs) / job.concurrency));
      while (performance.now() < end) await stream(job, result, performance.now() - start >= job.rampMs);
    }),
  );
  return result;
}

process.on('message', async (job: LatencyJob | RequestsJob | StreamsJob | SteadyJob) => {
  try {
    if (job.kind === 'latency') process.send!({ samples: await latency(job) });
    else if (job.kind === 'requests') process.send!(await requests(job));
    else process.send!({ streams: job.kind === 'steady' ? await steady(job) : await streams(job) });
  } catch (err) {
    process.send!({ error: String((err as Error).message) });
  }
});
process.on('disconnect', () => process.exit(0));
process.send!({ ready: true });
