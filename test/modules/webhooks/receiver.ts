import { createHmac } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface Received {
  path: string;
  headers: http.IncomingHttpHeaders;
  body: string;
  /** When it arrived (ms since the epoch, the receiver's clock). */
  at: number;
}

/** What a route answers: a status (with a body of its own, or `answer <status> to <path>`), a redirect, silence, or a huge body. */
export type Behaviour = (n: number) => { status: number; location?: string; body?: string } | 'hang' | 'huge';

/**
 * A real webhook receiver on loopback: it keeps every request and answers
 * each path as told (by how many requests that path has had).
 */
export async function startReceiver(routes: Record<string, Behaviour>) {
  const received: Received[] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const path = req.url ?? '/';
      received.push({ path, headers: req.headers, body: Buffer.concat(chunks).toString('utf8'), at: Date.now() });
      const behaviour = routes[path] ?? (() => ({ status: 200 }));
      const answer = behaviour(received.filter((r) => r.path === path).length);
      if (answer === 'hang') return;
      if (answer === 'huge') {
        // 50 MB, written as the client reads: it should hang up long before the end.
        res.writeHead(200, { 'content-type': 'text/plain', 'content-length': String(50 * 1024 * 1024) });
        const chunk = Buffer.alloc(64 * 1024, 'x');
        let left = 800;
        const pump = () => {
          while (left > 0 && !res.destroyed) {
            left--;
            if (!res.write(chunk)) return void res.once('drain', pump);
          }
          res.end();
        };
        return pump();
      }
      res.writeHead(answer.status, { 'content-type': 'text/plain', ...(answer.location ? { location: answer.location } : {}) });
      res.end(answer.body ?? `answer ${answer.status} to ${path}`);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url,
    received,
    on: (path: string) => received.filter((r) => r.path === path),
    close: () => {
      server.closeAllConnections();
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/**
 * Verifies a request as a Standard Webhooks receiver does: HMAC-SHA256 over
 * `${id}.${timestamp}.${body}` with the base64-decoded secret after
 * `whsec_`, compared with each `v1,` signature of the header.
 */
export function verifies(secret: string, r: Received): boolean {
  const id = r.headers['webhook-id'];
  const timestamp = r.headers['webhook-timestamp'];
  const header = r.headers['webhook-signature'];
  if (typeof id !== 'string' || typeof timestamp !== 'string' || typeof header !== 'string') return false;
  if (Math.abs(Date.now() / 1000 - Number(timestamp)) > 300) return false;
  const expected = createHmac('sha256', Buffer.from(secret.slice('whsec_'.length), 'base64')).update(`${id}.${timestamp}.${r.body}`).digest('base64');
  return header.split(' ').some((s) => s === `v1,${expected}`);
}
