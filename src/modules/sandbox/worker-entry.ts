/**
 * A sandbox worker process, forked by the pool with an environment of its own
 * (no server secret in it) and run by Node with type stripping. It runs one
 * script at a time, each in a fresh isolate-vm isolate: its own heap, no
 * `process`, `require`, timers, filesystem or network, only `console` (captured)
 * and `input` (a copy). It imports nothing of the server's but `clip`
 * (platform/text.ts, which imports nothing itself).
 */
import ivm from 'isolated-vm';
import { clip } from '../../platform/text.ts';
import type { FromWorker, OutputLevel, OutputLine, RunErrorCode, RunReply, RunRequest, ToWorker } from './protocol.ts';

const send = (message: FromWorker) => process.send?.(message);

/** Marks an error the harness throws itself, so it is told apart from the script's own. */
const NOT_JSON = '\u0000result_not_json:';

/** The longest error message a run reports (a script can throw one of any length). */
const MAX_ERROR_CHARS = 10_000;

/**
 * Runs inside the isolate before the script: captures `console` (stopping at
 * the cap, so a flood of output costs the host nothing), removes WebAssembly, defines `input`, runs
 * the script and turns its result into JSON with the built-ins it saw first.
 * $0 code, $1 mode, $2 input JSON, $3 the host's output callback.
 */
const HARNESS = `
const code = $0, mode = $1, inputJson = $2, log = $3;
const stringify = JSON.stringify, parse = JSON.parse, toText = String;
const AsyncFunction = (async function () {}).constructor;
let full = false;
const show = (v) => {
  if (typeof v === 'string') return v;
  if (v instanceof Error) return v.stack || toText(v);
  if (v === undefined || typeof v === 'function' || typeof v === 'symbol' || typeof v === 'bigint') return toText(v);
  try { const s = stringify(v); return s === undefined ? toText(v) : s; } catch { return toText(v); }
};
const writer = (level) => function (...args) {
  if (full) return;
  let text = '';
  for (let i = 0; i < args.length; i++) text += (i ? ' ' : '') + show(args[i]);
  full = !log(level, text);
};
const console = { log: writer('log'), info: writer('info'), warn: writer('warn'), error: writer('error'), debug: writer('log') };
Object.defineProperty(globalThis, 'console', { value: console, writable: true, configurable: true });
// WebAssembly memories are allocated outside the isolate's heap limit: a script could hold gigabytes.
delete globalThis.WebAssembly;
Object.defineProperty(globalThis, 'input', { value: inputJson === null ? null : parse(inputJson), writable: true, configurable: true });
const value = mode === 'script' ? (0, eval)(code) : new AsyncFunction(code)();
return Promise.resolve(value).then((v) => {
  if (v === undefined) return 'null';
  let json;
  try { json = stringify(v); } catch (e) { throw new Error('${NOT_JSON}' + (e && e.message)); }
  if (json === undefined) throw new Error('${NOT_JSON}a ' + typeof v + ' is not JSON');
  return json;
});
`;

/** Decides how the result is read: a plain script gives its last expression; one with top-level `return` or `await` runs as an async function body. */
async function modeOf(isolate: ivm.Isolate, code: string): Promise<'script' | 'function'> {
  try {
    (await isolate.compileScript(code)).release();
    return 'script';
  } catch (scriptError) {
    try {
      (await isolate.compileScript(`(async function () {\n${code}\n})`)).release();
      return 'function';
    } catch {
      throw scriptError;
    }
  }
}

async function run(req: RunRequest): Promise<RunReply> {
  const started = performance.now();
  const output: OutputLine[] = [];
  let outputBytes = 0;
  let truncated = false;
  const capture = (level: OutputLevel, text: string): boolean => {
    if (truncated) return false;
    let bytes = Buffer.byteLength(text);
    if (outputBytes + bytes > req.maxOutputBytes) {
      // Cut at a character boundary within what is left.
      text = Buffer.from(text).subarray(0, req.maxOutputBytes - outputBytes).toString().replace(/\uFFFD$/, '');
      bytes = Buffer.byteLength(text);
      truncated = true;
    }
    outputBytes += bytes;
    if (text || !truncated) output.push({ level, message: text });
    return !truncated;
  };

  const isolate = new ivm.Isolate({ memoryLimit: req.memoryMb });
  let wallExpired = false;
  let lastCpuNs = 0n;
  const reply = (status: 'ok' | 'error', resultJson: string | null, error?: { code: RunErrorCode; message: string }): RunReply => {
    const wallMs = Math.round(performance.now() - started);
    if (!isolate.isDisposed) lastCpuNs = isolate.cpuTime;
    // A disposed isolate no longer tells its CPU time: the wall time is the nearest bound.
    const cpuMs = lastCpuNs ? Math.round(Number(lastCpuNs) / 1e6) : wallMs;
    // An isolate ended from outside (memory, wall clock) may leave native state behind: the pool replaces this process.
    const retire = wallExpired || error?.code === 'memory_limit';
    // A script's error message is its own to make as long as its memory allows: cut, as its output is.
    const bounded = error && { ...error, message: clip(error.message, MAX_ERROR_CHARS) };
    return { type: 'result', id: req.id, status, resultJson, output, truncated, error: bounded, cpuMs: Math.min(cpuMs, wallMs), wallMs, retire };
  };

  // isolated-vm disposes an isolate that reaches its memory limit, but has been seen to leave the run's
  // promise unsettled when it does: the run also ends when the isolate is found disposed, or at the wall limit.
  let stop!: (err: Error) => void;
  const stopped = new Promise<never>((_, reject) => (stop = reject));
  stopped.catch(() => {});
  const wall = setTimeout(() => {
    wallExpired = true;
    if (!isolate.isDisposed) isolate.dispose();
    stop(new Error('wall limit'));
  }, req.wallMs);
  const watch = setInterval(() => {
    if (isolate.isDisposed) stop(new Error('Isolate was disposed during execution due to memory limit'));
  }, 20);

  const execute = async (): Promise<RunReply> => {
    let mode: 'script' | 'function';
    try {
      mode = await modeOf(isolate, req.code);
    } catch (err) {
      return reply('error', null, { code: 'syntax_error', message: describe(err) });
    }
    const context = await isolate.createContext();
    const json = await context.evalClosure(HARNESS, [req.code, mode, req.inputJson, new ivm.Callback(capture)], {
      arguments: { copy: true },
      result: { promise: true, copy: true },
      timeout: req.cpuMs,
    });
    if (typeof json !== 'string') return reply('error', null, { code: 'result_not_json', message: 'The result could not be turned into JSON' });
    if (Buffer.byteLength(json) > req.maxResultBytes) return reply('error', null, { code: 'result_too_large', message: `The result is over ${req.maxResultBytes} bytes as JSON` });
    return reply('ok', json);
  };

  try {
    return await Promise.race([execute(), stopped]);
  } catch (err) {
    return reply('error', null, classify(err, req, wallExpired, isolate.isDisposed));
  } finally {
    clearTimeout(wall);
    clearInterval(watch);
    if (!isolate.isDisposed) {
      lastCpuNs = isolate.cpuTime;
      isolate.dispose();
    }
  }
}

function describe(err: unknown): string {
  if (err instanceof Error) return err.name && err.name !== 'Error' ? `${err.name}: ${err.message}` : err.message;
  return String(err);
}

function classify(err: unknown, req: RunRequest, wallExpired: boolean, disposed: boolean): { code: RunErrorCode; message: string } {
  const message = err instanceof Error ? err.message : String(err);
  if (wallExpired) return { code: 'timeout', message: `The script did not finish within ${req.wallMs} ms` };
  if (message.includes('Script execution timed out')) return { code: 'timeout', message: `The script used more than ${req.cpuMs} ms of CPU` };
  if (message.includes('memory limit') || message.includes('Array buffer allocation failed') || disposed)
    return { code: 'memory_limit', message: `The script needed more than its ${req.memoryMb} MB of memory${message.includes('Array buffer') ? ' (an ArrayBuffer allocation failed)' : ''}` };
  if (message.startsWith(NOT_JSON)) return { code: 'result_not_json', message: `The result is not JSON: ${message.slice(NOT_JSON.length)}` };
  return { code: 'script_error', message: describe(err) };
}

process.on('message', (message: ToWorker) => {
  if (message.type === 'ping') send({ type: 'pong', n: message.n });
  else if (message.type === 'run')
    void run(message).then(send, (err: unknown) => {
      // Nothing should reach here; if it does, the pool sees the worker go and fails the run as crashed.
      process.stderr.write(`sandbox worker: ${String(err)}\n`);
      process.exit(1);
    });
});
// The server went away: nothing left to run for.
process.on('disconnect', () => process.exit(0));
send({ type: 'ready' });
