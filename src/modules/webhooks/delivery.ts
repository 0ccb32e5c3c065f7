import { createHmac, createSecretKey, randomBytes } from 'node:crypto';
import http from 'node:http';
import https from 'node:https';
import { isIP } from 'node:net';
import { storableText } from '../../platform/text.ts';
import type { HostLookup } from '../../platform/net/public-address.ts';
import { isLookupUnavailable, resolvePublic, type ResolvedAddress } from './address.ts';

/** A new endpoint secret, Standard Webhooks style: `whsec_` and base64 of 24 random bytes. */
export const newSecret = () => `whsec_${randomBytes(24).toString('base64')}`;

/**
 * `v1,<base64 HMAC-SHA256 of id.timestamp.body>` under each secret, space-separated (one more for each secret a rotation replaced, while it still signs).
 * The key as a KeyObject: under Node 24 a Buffer key costs ~20 µs more per HMAC (see Cipher).
 */
export function signatures(secrets: string[], id: string, timestamp: number, body: string): string {
  return secrets
    .map((secret) => `v1,${createHmac('sha256', createSecretKey(Buffer.from(secret.replace(/^whsec_/, ''), 'base64'))).update(`${id}.${timestamp}.${body}`).digest('base64')}`)
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
/** An idle kept-alive socket is closed after this long: under the 5 s a Node.js server keeps one, so it is rarely closed under us. */
const IDLE_SOCKET_MS = 4_000;

/**
 * Connections kept alive between attempts, pooled per checked address (the
 * request names the address, not the host): a burst of deliveries to one
 * receiver reuses a few sockets instead of a handshake each.
 */
const agents = {
  'http:': new http.Agent({ keepAlive: true, timeout: IDLE_SOCKET_MS }),
  'https:': new https.Agent({ keepAlive: true, timeout: IDLE_SOCKET_MS }),
};

/**
 * One POST to an endpoint: to the address checked against the private ranges
 * (not a second lookup), no redirects followed (a 3xx is a failure), at most
 * 1 KB of the answer read before the connection is dropped, and a hard
 * timeout over the whole exchange. Only a 2xx is a success. A kept-alive
 * socket the receiver closed as the request went out is retried once on a
 * new connection (nothing of the request was read).
 */
export async function post(input: {
  url: string;
  headers: Record<string, string>;
  body: string;
  timeoutMs: number;
  allowPrivate: boolean;
  /** The resolver (the system's by default). */
  lookup?: HostLookup;
}): Promise<DeliveryResult> {
  const started = performance.now();
  const done = (r: Omit<DeliveryResult, 'latencyMs'>): DeliveryResult => ({ ...r, latencyMs: Math.round(performance.now() - started) });
  let target: ResolvedAddress;
  const url = new URL(input.url);
  try {
    target = await resolvePublic(url, input.allowPrivate, input.lookup);
  } catch (err) {
    // A lookup that failed for now says why in its cause ("… could not be resolved (EAI_AGAIN)"); the next attempt may pass.
    const reason = isLookupUnavailable(err) ? ((err as Error).cause as Error) : (err as Error);
    return done({ ok: false, statusCode: null, excerpt: null, error: reason.message });
  }
  const deadline = started + input.timeoutMs;
  let result = await exchange(url, target, input, deadline, true);
  if (result === 'stale socket') result = await exchange(url, target, input, deadline, false);
  // Only a pooled socket is ever stale: the second exchange had a new connection.
  return done(result === 'stale socket' ? { ok: false, statusCode: null, excerpt: null, error: 'Connection reset' } : result);
}

function exchange(
  url: URL,
  target: ResolvedAddress,
  input: { headers: Record<string, string>; body: string; timeoutMs: number },
  deadline: number,
  pooled: boolean,
): Promise<Omit<DeliveryResult, 'latencyMs'> | 'stale socket'> {
  const secure = url.protocol === 'https:';
  return new Promise((resolve) => {
    let settled = false;
    /** `keep`: the answer was read to its end, so the socket can serve the next attempt. */
    const finish = (r: Omit<DeliveryResult, 'latencyMs'> | 'stale socket', keep = false) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (!keep) req.destroy();
      resolve(r);
    };
    const req = (secure ? https : http).request(
      {
        method: 'POST',
        // Connect to the checked address, whatever DNS says now; the URL's host goes in Host and in TLS's SNI and certificate check.
        hostname: target.address,
        family: target.family,
        port: url.port || (secure ? 443 : 80),
        path: `${url.pathname}${url.search}`,
        servername: secure && !isIP(url.hostname) ? url.hostname : undefined,
        agent: pooled ? agents[url.protocol as 'http:' | 'https:'] : false,
        headers: { ...input.headers, host: url.host, 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(input.body)), 'user-agent': 'Parley-Webhooks/1' },
      },
      (res) => {
        const status = res.statusCode ?? 0;
        const chunks: Buffer[] = [];
        let size = 0;
        const settle = (ended: boolean) => {
          // Stored as text, which PostgreSQL cannot hold a NUL in: made storable as any outside text is (it only shrinks).
          const excerpt = storableText(Buffer.concat(chunks).subarray(0, EXCERPT_BYTES).toString('utf8'));
          const ok = status >= 200 && status < 300;
          finish({ ok, statusCode: status, excerpt, error: ok ? null : status >= 300 && status < 400 ? `Redirect (${status}) not followed` : `HTTP ${status}` }, ended);
        };
        res.on('data', (chunk: Buffer) => {
          chunks.push(chunk);
          size += chunk.length;
          // Enough for the log: the rest of a large answer is never read.
          if (size >= EXCERPT_BYTES) settle(false);
        });
        res.on('end', () => settle(true));
        res.on('error', () => settle(false));
      },
    );
    const timer = setTimeout(() => finish({ ok: false, statusCode: null, excerpt: null, error: `Timed out after ${input.timeoutMs} ms` }), Math.max(0, deadline - performance.now()));
    // A 101 Switching Protocols: without this listener Node drops the socket and reports nothing, so the attempt would wait out its timeout.
    req.on('upgrade', (res, socket) => {
      socket.destroy();
      finish({ ok: false, statusCode: res.statusCode ?? null, excerpt: null, error: `HTTP ${res.statusCode}` });
    });
    req.on('error', (err: NodeJS.ErrnoException) => {
      if (pooled && req.reusedSocket && err.code === 'ECONNRESET') finish('stale socket');
      else finish({ ok: false, statusCode: null, excerpt: null, error: err.message });
    });
    req.end(input.body);
  });
}
