import http from 'node:http';
import https from 'node:https';
import { ValidationError } from '../../../errors.ts';
import type { HostLookup } from '../../../platform/net/public-address.ts';
import { resolvePublic, type AddressErrors } from '../../webhooks/index.ts';

/** An absolute https URL without credentials (plain http too where private addresses are allowed: a closed network, tests). */
export function parseEndpoint(raw: string, allowPrivate: boolean): URL {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw ValidationError('endpoint is not a valid absolute URL', 'push_endpoint_invalid');
  }
  if (url.protocol !== 'https:' && !(allowPrivate && url.protocol === 'http:')) throw ValidationError('endpoint must be an https URL', 'push_endpoint_invalid');
  if (url.username || url.password) throw ValidationError('endpoint must not carry credentials', 'push_endpoint_invalid');
  if (url.hash) throw ValidationError('endpoint must not have a fragment', 'push_endpoint_invalid');
  return url;
}

/** The address check refused the host (the webhooks module's rule, shared by every fetch of a user-given URL). */
export const isPrivate = (err: unknown) => (err as { code?: string }).code === 'webhook_url_private';

const ENDPOINT_ERRORS: AddressErrors = {
  private: () => ValidationError('endpoint resolves to a private, loopback or link-local address', 'push_endpoint_unreachable'),
  unresolvable: (host) => ValidationError(`endpoint host ${host} does not resolve`, 'push_endpoint_unreachable'),
};

/** Resolves the endpoint's host and refuses private, loopback and link-local addresses (unless allowed); returns the address to connect to. */
export const checkEndpoint = (url: URL, allowPrivate: boolean, lookup?: HostLookup) => resolvePublic(url, allowPrivate, lookup, ENDPOINT_ERRORS);

export interface PushResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  /** The first KB of the answer (a push service's error message). */
  excerpt: string;
}

const EXCERPT_BYTES = 1024;

/**
 * One request to a push service: to the address checked against the private ranges (no second lookup),
 * no redirects, at most 1 KB of the answer read, a timeout over the whole exchange, aborted with `signal`.
 * Rejects on a refused address, a network error or the timeout (all worth a retry).
 */
export async function postToPushService(input: {
  endpoint: string;
  headers: Record<string, string | number>;
  body: Buffer | null;
  allowPrivate: boolean;
  timeoutMs: number;
  signal?: AbortSignal;
}): Promise<PushResponse> {
  const url = new URL(input.endpoint);
  const target = await resolvePublic(url, input.allowPrivate);
  const client = url.protocol === 'https:' ? https : http;
  return new Promise<PushResponse>((resolve, reject) => {
    let settled = false;
    const finish = (err: Error | null, res?: PushResponse) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      input.signal?.removeEventListener('abort', onAbort);
      req.destroy();
      if (err) reject(err);
      else resolve(res!);
    };
    const onAbort = () => finish(new Error('aborted'));
    const headers = Object.fromEntries(Object.entries(input.headers).map(([k, v]) => [k, String(v)]));
    const req = client.request(
      url,
      {
        method: 'POST',
        headers: { ...headers, 'user-agent': 'Parley-Push/1' },
        lookup: (_host, opts, cb) => ((opts as { all?: boolean }).all ? (cb as any)(null, [target]) : cb(null, target.address, target.family)),
      },
      (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        const settle = () => finish(null, { status: res.statusCode ?? 0, headers: res.headers, excerpt: Buffer.concat(chunks).subarray(0, EXCERPT_BYTES).toString('utf8') });
        res.on('data', (chunk: Buffer) => {
          chunks.push(chunk);
          size += chunk.length;
          if (size >= EXCERPT_BYTES) settle();
        });
        res.on('end', settle);
        res.on('error', settle);
      },
    );
    const timer = setTimeout(() => finish(new Error(`no answer within ${input.timeoutMs} ms`)), input.timeoutMs);
    if (input.signal?.aborted) return onAbort();
    input.signal?.addEventListener('abort', onAbort, { once: true });
    req.on('error', (err) => finish(err));
    req.end(input.body ?? undefined);
  });
}
