import type { WebSocket } from 'ws';
import { AppError } from '../../errors.ts';
import type { Logger } from '../../platform/observability/logger.ts';
import type { Principal } from '../auth/authenticator.ts';
import type { Client, Gateway } from './gateway.ts';
import { CLOSE, frames, parseClientMessage, type ClientMessage } from './protocol.ts';
import type { RealtimeSettings } from './settings.ts';
import { parseTopic, type TopicAccess } from './topics.ts';

const OPEN = 1;
/** Malformed or invalid messages one socket may send before it is closed with 4400. */
const MAX_PROTOCOL_ERRORS = 10;

export interface ConnectionDeps {
  gateway: Gateway;
  authenticate: (credential: string) => Promise<Principal>;
  /** Bans and request limits, as for an HTTP request; throws an AppError to refuse. */
  admit: (principal: Principal) => Promise<void>;
  access: TopicAccess;
  settings: RealtimeSettings;
  logger: Logger;
}

const closeCodeOf = (err: AppError) => (err.status === 401 ? CLOSE.unauthorized : err.status === 403 ? CLOSE.forbidden : err.status === 429 ? CLOSE.tooMany : CLOSE.internal);

/**
 * One socket's session: authentication (a credential from the upgrade request,
 * else the first message), then subscribe/unsubscribe/ping. Messages are
 * handled one after another, in order, so a subscribe sent right after the
 * credential waits for it; at most a bounded number wait.
 */
export function acceptConnection(socket: WebSocket, credential: string | undefined, d: ConnectionDeps): void {
  const maxPending = d.settings.maxSubscriptions + 16;
  let principal: Principal | undefined;
  let client: Client | undefined;
  let tail: Promise<void> = Promise.resolve();
  let pending = 0;
  let errors = 0;

  const open = () => socket.readyState === OPEN;
  const send = (frame: string): void => {
    if (open()) socket.send(frame);
  };
  const close = (code: number, reason: string): void => {
    if (open()) socket.close(code, reason);
  };

  const untrack = d.gateway.track(socket);
  const authTimer = setTimeout(() => close(CLOSE.authTimeout, 'authentication timed out'), d.settings.authTimeoutMs);
  socket.on('close', () => {
    clearTimeout(authTimer);
    untrack();
    if (client) d.gateway.leave(client);
  });

  function enqueue(task: () => Promise<void>) {
    if (pending >= maxPending) return close(CLOSE.policy, 'too many messages in flight');
    pending++;
    tail = tail
      .then(task)
      .catch((err) => {
        d.logger.error({ err }, 'websocket message handling failed');
        close(CLOSE.internal, 'internal error');
      })
      .finally(() => pending--);
  }

  async function authenticate(token: string) {
    let p: Principal;
    try {
      p = await d.authenticate(token);
      await d.admit(p);
    } catch (err) {
      if (!(err instanceof AppError)) throw err;
      return close(closeCodeOf(err), err.code);
    }
    if (!open()) return;
    const c: Client = { userId: p.userId, socket, topics: new Set() };
    if (!(await d.gateway.join(c))) return close(CLOSE.tooMany, 'too many connections for this user');
    if (!open()) return d.gateway.leave(c);
    clearTimeout(authTimer);
    principal = p;
    client = c;
    send(frames.ready(p.userId));
  }

  async function subscribe(name: string) {
    const topic = parseTopic(name);
    if (!topic) return send(frames.error('invalid_topic', `"${name.slice(0, 80)}" is not a topic`, name.slice(0, 200)));
    if (client!.topics.has(topic.name)) return send(frames.subscribed(topic.name));
    if (client!.topics.size >= d.settings.maxSubscriptions) {
      return send(frames.error('too_many_subscriptions', `At most ${d.settings.maxSubscriptions} topics per socket`, topic.name));
    }
    try {
      await d.access(principal!, topic);
    } catch (err) {
      if (!(err instanceof AppError)) throw err;
      return send(frames.error(err.code, err.message, topic.name));
    }
    client!.topics.add(topic.name);
    send(frames.subscribed(topic.name));
  }

  async function handle(m: ClientMessage) {
    switch (m.type) {
      case 'auth':
        return send(frames.error('already_authenticated', 'This socket is already authenticated'));
      case 'ping':
        return send(frames.pong());
      case 'subscribe':
        return subscribe(m.topic);
      case 'unsubscribe': {
        const name = parseTopic(m.topic)?.name ?? m.topic;
        client!.topics.delete(name);
        return send(frames.unsubscribed(name));
      }
    }
  }

  if (credential) enqueue(() => authenticate(credential));
  socket.on('message', (data, isBinary) =>
    enqueue(async () => {
      if (!open()) return;
      const parsed = parseClientMessage(data, isBinary);
      if (!principal) {
        if (parsed.ok && parsed.message.type === 'auth') return authenticate(parsed.message.token);
        return close(CLOSE.unauthorized, 'authenticate first');
      }
      if (parsed.ok) return handle(parsed.message);
      if (++errors >= MAX_PROTOCOL_ERRORS) return close(CLOSE.malformed, 'too many malformed messages');
      send(frames.error(parsed.code, parsed.message));
    }),
  );
}
