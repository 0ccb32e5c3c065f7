import { randomUUID } from 'node:crypto';
import type { WebSocket } from 'ws';
import { AppError } from '../../errors.ts';
import type { Logger } from '../../platform/observability/logger.ts';
import type { Principal } from '../auth/index.ts';
import type { Client, Gateway } from './gateway.ts';
import { CLOSE, frames, parseClientMessage, type ClientMessage } from './protocol.ts';
import type { RealtimeSettings } from './settings.ts';
import type { TopicRegistry } from './topics.ts';

const OPEN = 1;
/** How long a socket closed before it authenticated may take to answer the close frame before it is cut. */
const UNAUTHENTICATED_CLOSE_GRACE_MS = 1_000;
/** Malformed or invalid messages one socket may send before it is closed with 4400. */
const MAX_PROTOCOL_ERRORS = 10;

export interface ConnectionDeps {
  gateway: Gateway;
  authenticate: (credential: string) => Promise<Principal>;
  /** Bans and request limits, as for an HTTP request; throws an AppError to refuse. */
  admit: (principal: Principal) => Promise<void>;
  /** Bans only (counts nothing), for the periodic check and renewals; throws an AppError to refuse. */
  stillAdmitted: (principal: Principal) => Promise<void>;
  /** The client's address (request.ip): an IP ban covering it checks the socket again at once. */
  address: string;
  /** Told once the socket is authenticated: it no longer counts among its address's unauthenticated ones (WS_MAX_PENDING_PER_IP). */
  authenticated: () => void;
  topics: TopicRegistry;
  settings: RealtimeSettings;
  logger: Logger;
}

const closeCodeOf = (err: AppError) => (err.status === 401 ? CLOSE.unauthorized : err.status === 403 ? CLOSE.forbidden : err.status === 429 ? CLOSE.tooMany : CLOSE.internal);

/**
 * One socket's session: authentication (a credential from the upgrade request,
 * else the first message), then subscribe/unsubscribe/ping. Messages are
 * handled one after another, in order, so a subscribe sent right after the
 * credential waits for it; at most a bounded number wait. The credential is
 * checked again once the socket listens to its user's channel (a notice sent
 * before that went by unheard), as soon as one of the user's may have ended (a revoked session,
 * deleted key, disabled or deleted account, ban: the gateway's RECHECK), or an
 * IP ban covers its address, and every `reauthMs` for what ends on its own (an
 * expired token or key) or was not told (a lost notice); one that no longer holds closes the
 * socket. An `auth` message with a fresh token of the same user renews it.
 */
export function acceptConnection(socket: WebSocket, offered: string | undefined, d: ConnectionDeps): void {
  const maxPending = d.settings.maxSubscriptions + 16;
  let principal: Principal | undefined;
  /** The credential the socket is authenticated with now. */
  let credential: string | undefined;
  let recheckTimer: NodeJS.Timeout | undefined;
  let client: Client | undefined;
  let tail: Promise<void> = Promise.resolve();
  let pending = 0;
  let errors = 0;

  const open = () => socket.readyState === OPEN;
  const send = (frame: string): void => d.gateway.send(socket, frame);
  const close = (code: number, reason: string): void => {
    if (!open()) return;
    socket.close(code, reason);
    // Unauthenticated, it still holds a place of its address's (WS_MAX_PENDING_PER_IP) until the connection ends: a
    // client that never answers the close frame is cut after a moment, not after ws's 30 s.
    if (!principal) setTimeout(() => socket.terminate(), UNAUTHENTICATED_CLOSE_GRACE_MS).unref();
  };

  const untrack = d.gateway.track(socket);
  const authTimer = setTimeout(() => close(CLOSE.authTimeout, 'authentication timed out'), d.settings.authTimeoutMs);
  socket.on('close', () => {
    clearTimeout(authTimer);
    clearInterval(recheckTimer);
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

  /** The principal a credential stands for, or the AppError that refuses it (anything else is thrown). */
  async function verify(token: string, admit: (p: Principal) => Promise<void>): Promise<Principal | AppError> {
    try {
      const p = await d.authenticate(token);
      await admit(p);
      return p;
    } catch (err) {
      if (err instanceof AppError) return err;
      throw err;
    }
  }

  async function authenticate(token: string) {
    const p = await verify(token, d.admit);
    if (p instanceof AppError) return close(closeCodeOf(p), p.code);
    if (!open()) return;
    const c: Client = { id: randomUUID(), userId: p.userId, socket, topics: new Set(), address: d.address, recheck: () => enqueue(recheck) };
    if (!(await d.gateway.join(c))) return close(CLOSE.tooMany, 'too many connections for this user');
    if (!open()) return d.gateway.leave(c);
    // A credential that ended after the check above, and whose recheck notice came before the user's channel was
    // listened to here (or before this socket was among the user's), went by unheard: checked once more, now that
    // every later notice reaches the socket, before it is told it is ready.
    const still = await verify(token, d.stillAdmitted);
    if (still instanceof AppError || !open()) {
      d.gateway.leave(c);
      return still instanceof AppError ? close(closeCodeOf(still), still.code) : undefined;
    }
    clearTimeout(authTimer);
    principal = still;
    credential = token;
    client = c;
    d.authenticated();
    recheckTimer = setInterval(() => enqueue(recheck), d.settings.reauthMs);
    recheckTimer.unref();
    send(frames.ready(p.userId));
  }

  /** The credential again, as if the socket were opened now; a refusal closes it with the code a new one would get. */
  async function recheck() {
    if (!open()) return;
    const p = await verify(credential!, d.stillAdmitted);
    if (p instanceof AppError) close(closeCodeOf(p), p.code);
  }

  /** A fresh credential for the same user (a refreshed access token): the socket goes on with it. Counted as a request. */
  async function renew(token: string) {
    const p = await verify(token, d.admit);
    // The credential in use may still be good: refuse the new one, keep the socket.
    if (p instanceof AppError) return send(frames.error(p.code, p.message));
    if (p.userId !== principal!.userId || p.apiKeyId !== principal!.apiKeyId) {
      return send(frames.error('different_credential', 'A socket stays with the user (and API key) that opened it; open another socket for this one'));
    }
    principal = p;
    credential = token;
    send(frames.ready(p.userId));
  }

  async function subscribe(name: string) {
    const topic = d.topics.parse(name);
    if (!topic) return send(frames.error('invalid_topic', `"${name.slice(0, 80)}" is not a topic`, name.slice(0, 200)));
    if (client!.topics.has(topic.name)) return send(frames.subscribed(topic.name));
    if (client!.topics.size >= d.settings.maxSubscriptions) {
      return send(frames.error('too_many_subscriptions', `At most ${d.settings.maxSubscriptions} topics per socket`, topic.name));
    }
    let p = principal!;
    if (d.topics.needsLookup(topic)) {
      // A look-up of what the topic names, as the same read over HTTP: the credential checked again (else a socket whose
      // session was revoked, or whose account was disabled or deleted, could subscribe until its next recheck), and
      // counted against the caller's request limits. A credential refused now closes the socket, as that recheck would.
      const checked = await verify(credential!, d.admit);
      if (checked instanceof AppError) {
        if (checked.status !== 429) return close(closeCodeOf(checked), checked.code);
        return send(frames.error(checked.code, checked.message, topic.name));
      }
      p = checked;
    }
    try {
      await d.topics.authorize(p, topic);
    } catch (err) {
      if (!(err instanceof AppError)) throw err;
      return send(frames.error(err.code, err.message, topic.name));
    }
    // Followed by everyone who may read it: its events come on the topic's channel, not on the user's.
    if (topic.definition.audience) {
      await d.gateway.follow(client!, topic);
      // Closed meanwhile: its leave has run already, without this topic.
      if (!open()) return d.gateway.unfollow(client!, topic.name);
    }
    client!.topics.add(topic.name);
    send(frames.subscribed(topic.name));
  }

  async function handle(m: ClientMessage) {
    switch (m.type) {
      case 'auth':
        return renew(m.token);
      case 'ping':
        return send(frames.pong());
      case 'subscribe':
        return subscribe(m.topic);
      case 'unsubscribe': {
        const name = d.topics.parse(m.topic)?.name ?? m.topic;
        client!.topics.delete(name);
        d.gateway.unfollow(client!, name);
        return send(frames.unsubscribed(name));
      }
    }
  }

  if (offered) enqueue(() => authenticate(offered));
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
