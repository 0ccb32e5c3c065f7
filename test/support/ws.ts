import { WebSocket, type ClientOptions } from 'ws';
import type { TestApp } from './app.ts';

export interface Frame {
  type: string;
  [field: string]: any;
}

export interface WsClient {
  ws: WebSocket;
  /** Frames received and not yet taken by `next`, in order. */
  frames: Frame[];
  send(message: unknown): void;
  /** The first received frame (since the last `next` that took one) matching `match`; fails after `ms`. */
  next(match?: (f: Frame) => boolean, ms?: number): Promise<Frame>;
  /** Resolves with the close code and reason once the socket has closed. */
  closed: Promise<{ code: number; reason: string }>;
  close(): Promise<void>;
}

export const wsUrl = (t: TestApp) => `${t.url.replace(/^http/, 'ws')}/v1/ws`;

/** Opens a socket to /v1/ws; resolves once open (not yet authenticated). */
export function connectWs(t: TestApp, opts: ClientOptions & { protocols?: string[] } = {}): Promise<WsClient> {
  const { protocols, ...options } = opts;
  const ws = new WebSocket(wsUrl(t), protocols, options);
  const frames: Frame[] = [];
  const waiters = new Set<() => void>();
  ws.on('message', (data) => {
    frames.push(JSON.parse(String(data)));
    for (const w of waiters) w();
  });
  const closed = new Promise<{ code: number; reason: string }>((resolve) => {
    ws.on('close', (code, reason) => {
      resolve({ code, reason: String(reason) });
      for (const w of waiters) w();
    });
  });
  ws.on('error', () => {});
  const client: WsClient = {
    ws,
    frames,
    send: (message) => ws.send(typeof message === 'string' ? message : JSON.stringify(message)),
    next(match = () => true, ms = 5_000) {
      return new Promise((resolve, reject) => {
        const check = () => {
          for (let i = 0; i < frames.length; i++) {
            if (!match(frames[i]!)) continue;
            const [f] = frames.splice(i, 1);
            waiters.delete(check);
            clearTimeout(timer);
            return resolve(f!);
          }
          if (ws.readyState === WebSocket.CLOSED) {
            waiters.delete(check);
            clearTimeout(timer);
            reject(new Error(`socket closed while waiting for a frame; received ${JSON.stringify(frames)}`));
          }
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`no matching frame within ${ms} ms; received ${JSON.stringify(frames)}`));
        }, ms);
        waiters.add(check);
        check();
      });
    },
    closed,
    async close() {
      if (ws.readyState !== WebSocket.CLOSED) {
        ws.close(1000);
        await closed;
      }
    },
  };
  return new Promise((resolve, reject) => {
    ws.once('open', () => resolve(client));
    ws.once('unexpected-response', (_req, res) => reject(new Error(`upgrade refused: ${res.statusCode}`)));
    ws.once('error', reject);
  });
}

/** A socket authenticated with its first message, after `ready`. */
export async function connectAs(t: TestApp, token: string, opts: ClientOptions = {}): Promise<WsClient> {
  const c = await connectWs(t, opts);
  c.send({ type: 'auth', token });
  await c.next((f) => f.type === 'ready');
  return c;
}

/** Subscribes and waits for the answer: `subscribed`, or the error frame. */
export async function subscribe(c: WsClient, topic: string): Promise<Frame> {
  c.send({ type: 'subscribe', topic });
  return c.next((f) => f.topic !== undefined && (f.type === 'subscribed' || f.type === 'error'));
}
