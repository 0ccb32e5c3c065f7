import { z } from 'zod';

/** The subprotocol the server selects; a client offers it, optionally next to `parley.auth.<token>`. */
export const SUBPROTOCOL = 'parley.v1';
export const AUTH_SUBPROTOCOL_PREFIX = 'parley.auth.';

/** Close codes the server uses (the 4xxx ones mirror HTTP statuses). */
export const CLOSE = {
  /** app.close(): the instance is shutting down; reconnect (to another instance). */
  goingAway: 1001,
  /** The client kept sending while earlier messages were still being handled. */
  policy: 1008,
  /** A message larger than WS_MAX_MESSAGE_BYTES (sent by ws itself). */
  tooBig: 1009,
  /** Unexpected server error while authenticating. */
  internal: 1011,
  /** Slow consumer: more than WS_MAX_BUFFERED_BYTES waiting to be sent to it. */
  slow: 1013,
  /** Too many malformed or invalid messages. */
  malformed: 4400,
  /** Missing, invalid or expired credential, or a first message that is not `auth`. */
  unauthorized: 4401,
  /** The user, key or address is banned. */
  forbidden: 4403,
  /** No `auth` message within WS_AUTH_TIMEOUT_MS. */
  authTimeout: 4408,
  /** WS_MAX_CONNECTIONS_PER_USER sockets already open for the user (across the cluster with Redis), or rate limited. */
  tooMany: 4429,
} as const;

const topic = z.string().min(1).max(200);

const clientMessage = z.discriminatedUnion('type', [
  z.object({ type: z.literal('auth'), token: z.string().min(1).max(8_192) }),
  z.object({ type: z.literal('subscribe'), topic }),
  z.object({ type: z.literal('unsubscribe'), topic }),
  z.object({ type: z.literal('ping') }),
]);

export type ClientMessage = z.infer<typeof clientMessage>;
const CLIENT_TYPES = new Set(['auth', 'subscribe', 'unsubscribe', 'ping']);

export type Parsed = { ok: true; message: ClientMessage } | { ok: false; code: 'malformed_message' | 'unknown_type' | 'invalid_message'; message: string };

/** A client frame as a message, or why it is not one. */
export function parseClientMessage(data: Buffer | ArrayBuffer | Buffer[], isBinary: boolean): Parsed {
  if (isBinary) return { ok: false, code: 'malformed_message', message: 'Send JSON text frames' };
  let value: unknown;
  try {
    value = JSON.parse(Buffer.isBuffer(data) ? data.toString('utf8') : Buffer.concat(Array.isArray(data) ? data : [Buffer.from(data)]).toString('utf8'));
  } catch {
    return { ok: false, code: 'malformed_message', message: 'Not valid JSON' };
  }
  const type = (value as { type?: unknown } | null)?.type;
  if (typeof type !== 'string') return { ok: false, code: 'invalid_message', message: 'A message is a JSON object with a string "type"' };
  if (!CLIENT_TYPES.has(type)) return { ok: false, code: 'unknown_type', message: `Unknown message type "${type.slice(0, 40)}"` };
  const r = clientMessage.safeParse(value);
  if (!r.success) return { ok: false, code: 'invalid_message', message: r.error.issues.map((i) => `${i.path.join('.') || type}: ${i.message}`).join('; ') };
  return { ok: true, message: r.data };
}

/** Server → client frames, serialized. */
export const frames = {
  ready: (userId: string) => JSON.stringify({ type: 'ready', userId }),
  subscribed: (topic: string) => JSON.stringify({ type: 'subscribed', topic }),
  unsubscribed: (topic: string) => JSON.stringify({ type: 'unsubscribed', topic }),
  pong: () => '{"type":"pong"}',
  error: (code: string, message: string, topic?: string) => JSON.stringify({ type: 'error', code, message, ...(topic ? { topic } : {}) }),
  /** `eventJson` is the already serialized `{id, type, payload, occurredAt}`. */
  event: (topic: string, eventJson: string) => `{"type":"event","topic":${JSON.stringify(topic)},"event":${eventJson}}`,
};

/** The token offered as a `parley.auth.<token>` subprotocol, if any. */
export function subprotocolToken(header: string | string[] | undefined): string | undefined {
  const offered = (Array.isArray(header) ? header.join(',') : (header ?? '')).split(',').map((s) => s.trim());
  const entry = offered.find((p) => p.startsWith(AUTH_SUBPROTOCOL_PREFIX));
  return entry ? entry.slice(AUTH_SUBPROTOCOL_PREFIX.length) || undefined : undefined;
}
