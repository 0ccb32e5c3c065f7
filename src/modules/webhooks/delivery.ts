import { createHmac, randomBytes } from 'node:crypto';
import http from 'node:http';
import https from 'node:https';
import { resolvePublic } from './address.ts';

/** A new endpoint secret, Standard Webhooks style: `whsec_` and base64 of 24 random bytes. */
export const newSecret = () => `whsec_${randomBytes(24).toString('base64')}`;

/** `v1,<base64 HMAC-SHA256 of id.timestamp.body>` under each secret, space-separated (two during a rotation). */
export function signatures(secrets: string[], id: string, timestamp: number, body: string): string {
  return secrets
    .map((secret) => `v1,${createHmac('sha256', Buffer.from(secret.replace(/^whsec_/, ''), 'base64')).update(`${id}.${timestamp}.${body}`).digest('base64')}`)
    .join(' ');
}

export interface DeliveryResult {
  ok: boolean;
  statusCode: number | null;
  latencyMs: number;
  excerpt: string | null;
  error: string | null;
}

const EXCERPT_BYTES = 1024;

/**
 * One POST to an endpoint: to the address checked against the private ranges
 * (not a second lookup), no redirects followed (a 3xx is a failure), at most
 * 1 KB of the answer read before the connection is dropped, and a hard
 * timeout over the whole exchange. Only a 2xx is a success.
 */
export async function post(input: { url: string; headers: Record<string, string>; body: string; timeoutMs: number; allowPrivate: boolean }): Promise<DeliveryResult> {
  const started = performance.now();
  const done = (r: Omit<DeliveryResult, 'latencyMs'>): DeliveryResult => ({ ...r, latencyMs: Math.round(performance.now() - started) });
  let target;
  const url = new URL(input.url);
  try {
    target = await resolvePublic(url, input.allowPrivate);
  } catch (err) {
    return done({ ok: false, statusCode: null, excerpt: null, error: (err as Error).message });
  }
  const client = url.protocol === 'https:' ? https : http;
  return new Promise<DeliveryResult>((resolve) => {
    let settled = false;
    const finish = (r: Omit<DeliveryResult, 'latencyMs'>) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      req.destroy();
      resolve(done(r));
    };
    const req = client.request(
      url,
      {
        method: 'POST',
        headers: { ...input.headers, 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(input.body)), 'user-agent': 'Parley-Webhooks/1' },
        // Connect to the checked address, whatever DNS says now.
        lookup: (_host, opts, cb) => ((opts as { all?: boolean }).all ? (cb as any)(null, [target]) : cb(null, target.address, target.family)),
      },
      (res) => {
        const status = res.statusCode ?? 0;
        const chunks: Buffer[] = [];
        let size = 0;
        const settle = () => {
          const excerpt = Buffer.concat(chunks).subarray(0, EXCERPT_BYTES).toString('utf8');
          const ok = status >= 200 && status < 300;
          finish({ ok, statusCode: status, excerpt, error: ok ? null : status >= 300 && status < 400 ? `Redirect (${status}) not followed` : `HTTP ${status}` });
        };
        res.on('data', (chunk: Buffer) => {
          chunks.push(chunk);
          size += chunk.length;
          // Enough for the log: the rest of a large answer is never read.
          if (size >= EXCERPT_BYTES) settle();
        });
        res.on('end', settle);
        res.on('error', settle);
      },
    );
    const timer = setTimeout(() => finish({ ok: false, statusCode: null, excerpt: null, error: `Timed out after ${input.timeoutMs} ms` }), input.timeoutMs);
    req.on('error', (err) => finish({ ok: false, statusCode: null, excerpt: null, error: err.message }));
    req.end(input.body);
  });
}
