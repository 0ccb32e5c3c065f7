import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * What a fake LLM upstream does with the next request. Both fakes (OpenAI,
 * Anthropic) read the same script; each renders it in its own wire format.
 */
export interface Script {
  /** The assistant's text; split into word-sized chunks unless `chunks` is given. */
  reply?: string;
  chunks?: string[];
  /** Wait this long before each chunk (and before the first). */
  delayMs?: number;
  /** Answer with this HTTP error status and the provider's error body. */
  status?: number;
  /** With `status`: the message of the provider's error body (default "Scripted failure <status>"). */
  errorMessage?: string;
  /** With `status` (429, 503): the Retry-After header, in seconds. */
  retryAfter?: number;
  /** Accept the request and never answer (nor close). */
  hang?: boolean;
  /** Keep the stream open, sending nothing more, after this many content chunks (until the client goes away). OpenAI, unstreamed: half the answer, then nothing. */
  holdAfter?: number;
  /** Destroy the socket after this many content chunks were written. OpenAI, unstreamed: after half the answer. */
  cutAfter?: number;
  /** Write each content frame in pieces of this many bytes, one network write each (a frame split across TCP reads). */
  splitFramesAt?: number;
  /** Write a non-JSON data line after this many content chunks, then carry on. OpenAI, unstreamed: an answer cut in half (not JSON). */
  malformedAfter?: number;
  /** Tool calls the model makes after its text. */
  toolCalls?: Array<{ id?: string; name: string; arguments: string }>;
  /** Token counts to report; defaults: ~chars/4 of the request, one per chunk. */
  usage?: { input?: number; output?: number; cached?: number };
  /** OpenAI: leave the usage out (the chunk even when include_usage asks for it; the field of an unstreamed answer), as some compatible servers do. */
  noUsage?: boolean;
  /** The provider's finish/stop reason; defaults to stop (or tool calls). */
  finishReason?: string;
}

export interface RecordedRequest {
  method: string;
  path: string;
  headers: IncomingMessage['headers'];
  body: any;
  at: number;
  /** The client went away before the answer was complete (an abort, a timeout). */
  aborted: boolean;
  /** The whole answer was handed to the socket. */
  finished: boolean;
}

export interface Reply {
  req: IncomingMessage;
  res: ServerResponse;
  body: any;
  script: Script;
}

/**
 * An HTTP server with a FIFO of scripts (one per request; `defaults` when the
 * queue is empty) and a record of every request it received.
 */
export async function startFakeUpstream(name: string, handle: (r: Reply) => Promise<void> | void) {
  const state = {
    /** Used when no script is queued. */
    defaults: { reply: `Hello from ${name}.` } as Script,
    queue: [] as Script[],
    /** Requests this matches get its script and leave the queue alone (background requests whose timing a test does not control). */
    aside: undefined as { when: (body: any) => boolean; script: Script } | undefined,
    requests: [] as RecordedRequest[],
  };
  const server = createServer(async (req, res) => {
    const text = await readText(req);
    let body: any;
    try {
      body = text ? JSON.parse(text) : undefined;
    } catch {
      body = text;
    }
    const record: RecordedRequest = { method: req.method!, path: new URL(req.url!, 'http://fake').pathname, headers: req.headers, body, at: Date.now(), aborted: false, finished: false };
    state.requests.push(record);
    res.on('finish', () => (record.finished = true));
    res.on('close', () => {
      if (!res.writableFinished) record.aborted = true;
    });
    const script = state.aside?.when(body) ? state.aside.script : (state.queue.shift() ?? state.defaults);
    if (script.hang) return; // the socket stays open until the client gives up or close() runs
    try {
      await handle({ req, res, body, script });
    } catch {
      res.destroy();
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url,
    state,
    get requests() {
      return state.requests;
    },
    /** Queue scripts for the next requests, in order. */
    script(...scripts: Script[]) {
      state.queue.push(...scripts);
    },
    /** Answers requests that `when` matches with `script`, whenever they come, without taking a queued script. */
    aside(when: (body: any) => boolean, script: Script) {
      state.aside = { when, script };
    },
    reset() {
      state.queue.length = 0;
      state.aside = undefined;
      state.requests.length = 0;
      state.defaults = { reply: `Hello from ${name}.` };
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

export type FakeUpstream = Awaited<ReturnType<typeof startFakeUpstream>>;

/** The chunks of a reply: explicit ones, or words with their following spaces. */
export function chunksOf(script: Script): string[] {
  if (script.chunks) return script.chunks;
  const reply = script.reply ?? '';
  return reply.match(/\S+\s*|\s+/g) ?? [];
}

/**
 * The pieces up to the first of the request's stop sequences (OpenAI's `stop`, a string or a list;
 * Anthropic's `stop_sequences`), which is left out as the providers leave it out, and which one it was.
 */
export function untilStop(pieces: string[], stop: unknown): { pieces: string[]; stopped?: string } {
  const stops = (typeof stop === 'string' ? [stop] : Array.isArray(stop) ? stop : []).filter((s): s is string => typeof s === 'string' && s !== '');
  const all = pieces.join('');
  let at = -1;
  let stopped: string | undefined;
  for (const s of stops) {
    const i = all.indexOf(s);
    if (i !== -1 && (at === -1 || i < at)) [at, stopped] = [i, s];
  }
  if (stopped === undefined) return { pieces };
  const kept: string[] = [];
  let length = 0;
  for (const p of pieces) {
    if (length + p.length >= at) {
      if (at > length) kept.push(p.slice(0, at - length));
      break;
    }
    kept.push(p);
    length += p.length;
  }
  return { pieces: kept, stopped };
}

/** Rough token count of a request, so usage is plausible without a tokenizer. */
export function roughTokens(value: unknown): number {
  return Math.max(1, Math.ceil(JSON.stringify(value ?? '').length / 4));
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Writes SSE frames, honouring the script's delay, cut and malformed options.
 * `write(frame)` returns false once the socket is gone, so callers stop.
 */
export function sseWriter(res: ServerResponse, script: Script) {
  let content = 0;
  res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'keep-alive' });
  res.flushHeaders();
  return {
    /** A frame carrying model output; counts towards cutAfter / malformedAfter. */
    async content(frame: string): Promise<boolean> {
      if (script.delayMs) await sleep(script.delayMs);
      if (res.destroyed) return false;
      if (script.holdAfter !== undefined && content >= script.holdAfter) {
        await new Promise((resolve) => res.once('close', resolve));
        return false;
      }
      if (script.cutAfter !== undefined && content >= script.cutAfter) {
        // Let the client read what was sent first: a cut loses the connection, not bytes already delivered.
        await sleep(50);
        res.socket?.destroy();
        return false;
      }
      if (script.malformedAfter !== undefined && content === script.malformedAfter) res.write('data: {"choices":[{"delta":{"content":"oops\n\n');
      const bytes = Buffer.from(frame);
      const size = script.splitFramesAt ?? bytes.length;
      // Small writes otherwise wait on Nagle's algorithm for the reader's delayed ACK.
      if (script.splitFramesAt) res.socket?.setNoDelay(true);
      for (let at = 0; at < bytes.length; at += size) {
        await new Promise<void>((resolve) => res.write(bytes.subarray(at, at + size), () => resolve()));
        // A pause, so each piece reaches the reader on its own.
        if (script.splitFramesAt) await sleep(2);
      }
      content++;
      return true;
    },
    /** A bookkeeping frame (start, stop, usage): written at once. */
    control(frame: string): boolean {
      if (res.destroyed) return false;
      res.write(frame);
      return true;
    },
    end() {
      if (!res.destroyed) res.end();
    },
  };
}

async function readText(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString();
}
