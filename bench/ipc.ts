// What the multi-process benches share: a child process running a role of
// the same bench file, driven by requests over IPC (one answer each), and the
// clock and percentile helpers their figures use.
import { fork, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';

/** Wall-clock milliseconds with sub-ms resolution, comparable across this machine's processes. */
export const now = () => performance.timeOrigin + performance.now();

/** CPU time (user + system) this process has used, in ms. */
export const cpuMs = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
};

/** CPU time (user + system) of another process and its threads so far, in ms, from its own accounting (Linux). */
export function procCpuMs(pid: number): number {
  // Fields after the command name (which may hold spaces): utime and stime are the 12th and 13th, in ticks of 10 ms.
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100;
}

/** The p-th percentile of an ascending array (NaN when empty). */
export const pct = (sorted: number[], p: number) => (sorted.length ? sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]! : NaN);

export type Handler = (msg: any) => Promise<unknown>;

/** In a child: answers each request from the parent with `handle`'s result or error; tells the parent it is up. */
export function serveIpc(handle: Handler) {
  process.on('message', async (m: any) => {
    try {
      process.send!({ id: m.id, result: await handle(m) });
    } catch (err) {
      process.send!({ id: m.id, error: err instanceof Error ? err.stack : String(err) });
    }
  });
  process.send!({ id: 0, result: 'up' });
}

export interface Child {
  proc: ChildProcess;
  /** A request (`cmd` and its arguments); rejects with the child's error or after `timeoutMs`. */
  call: (cmd: string, args?: object, timeoutMs?: number) => Promise<any>;
}

/** Forks `file` with `role` as its argument and waits until its serveIpc is up. */
export function forkRole(file: URL, role: string, execArgv: string[] = []): Promise<Child> {
  const proc = fork(file, [role], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], execArgv });
  let next = 1;
  const waiting = new Map<number, { resolve(v: unknown): void; reject(e: Error): void }>();
  proc.on('message', (m: any) => {
    const w = waiting.get(m.id);
    waiting.delete(m.id);
    if (m.error) w?.reject(new Error(m.error));
    else w?.resolve(m.result);
  });
  proc.on('exit', (code) => {
    for (const w of waiting.values()) w.reject(new Error(`${role} exited with ${code}`));
  });
  const call = (cmd: string, args: object = {}, timeoutMs = 60_000) =>
    new Promise<any>((resolve, reject) => {
      const id = next++;
      const timer = setTimeout(() => reject(new Error(`${role} ${cmd}: no answer within ${timeoutMs} ms`)), timeoutMs);
      waiting.set(id, { resolve: (v) => (clearTimeout(timer), resolve(v)), reject: (e) => (clearTimeout(timer), reject(e)) });
      proc.send({ id, cmd, ...args });
    });
  return new Promise((resolve, reject) => {
    waiting.set(0, { resolve: () => resolve({ proc, call }), reject });
    proc.once('error', reject);
  });
}

/**
 * Forks one of the bench's helper processes (the fake upstream, the load
 * client: `file` relative to the caller's URL) and waits for the first
 * message it sends, which says where it listens.
 */
export function child(file: URL, args: string[] = []): Promise<{ proc: ChildProcess; first: any }> {
  const proc = fork(file, args, { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  return new Promise((resolve, reject) => {
    proc.once('message', (first) => resolve({ proc, first }));
    proc.once('error', reject);
  });
}

/** One request to such a helper and its one answer (an `error` field rejects). */
export const ask = <T>(proc: ChildProcess, msg: unknown): Promise<T> =>
  new Promise((resolve, reject) => {
    proc.once('message', (m: any) => (m?.error ? reject(new Error(m.error)) : resolve(m)));
    proc.send(msg as never);
  });
