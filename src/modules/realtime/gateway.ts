import type { WebSocket } from 'ws';
import type { Broadcast } from '../../platform/broadcast/broadcast.ts';
import type { Logger } from '../../platform/observability/logger.ts';
import { CLOSE, frames } from './protocol.ts';
import { decodeDelivery, userChannel } from './relay.ts';
import type { RealtimeSettings } from './settings.ts';
import type { ConnectionSlots } from './slots.ts';

const OPEN = 1;
/** How long a socket closed for being slow, or at shutdown, may take to finish the closing handshake. */
const CLOSE_GRACE_MS = 1_000;
const HEARTBEAT_SLICES = 10;

/** An authenticated socket and the topics it is subscribed to. */
export interface Client {
  /** Unique per socket: names its connection slot. */
  id: string;
  userId: string;
  socket: WebSocket;
  topics: Set<string>;
}

interface UserSockets {
  clients: Set<Client>;
  /** The broadcast subscription to the user's channel, shared by all their sockets on this instance. */
  listening: Promise<() => Promise<void>>;
}

/**
 * The sockets of one instance: who is connected, the user channels it listens
 * to (one broadcast subscription per user with at least one socket here), event
 * delivery with backpressure, heartbeats and shutdown.
 */
export function createGateway(d: { broadcast: Broadcast; slots: ConnectionSlots; settings: RealtimeSettings; logger: Logger }) {
  const { settings } = d;
  const users = new Map<string, UserSockets>();
  /** Every open socket, authenticated or not: whether it answered the last ping, and its heartbeat slice. */
  const sockets = new Map<WebSocket, { answered: boolean; slice: Set<WebSocket> }>();
  // Pings go out a slice at a time, so thousands of sockets never cost one long pause of the event loop.
  const slices = Array.from({ length: HEARTBEAT_SLICES }, () => new Set<WebSocket>());
  let nextSlice = 0;
  let beat = 0;
  let drained: (() => void) | undefined;
  let dropped = 0;

  function dropSlow(socket: WebSocket) {
    if (socket.readyState !== OPEN) return;
    dropped++;
    socket.close(CLOSE.slow, 'slow consumer');
    // What is queued for it is freed now, not when it gets round to reading the close frame.
    setTimeout(() => socket.terminate(), CLOSE_GRACE_MS).unref();
  }

  /**
   * Sends a frame, events and replies alike, unless more than WS_MAX_BUFFERED_BYTES already waits for the
   * socket: a client that stops reading is closed as a slow consumer (1013), whatever it is sent.
   */
  function send(socket: WebSocket, frame: string): void {
    if (socket.readyState !== OPEN) return;
    if (socket.bufferedAmount > settings.maxBufferedBytes) return dropSlow(socket);
    socket.send(frame);
  }

  function deliver(entry: UserSockets, message: string) {
    const delivery = decodeDelivery(message);
    if (!delivery) return;
    const byTopic = new Map<string, string>();
    for (const client of entry.clients) {
      const topic = delivery.topics.find((t) => client.topics.has(t));
      const { socket } = client;
      if (!topic || socket.readyState !== OPEN) continue;
      let frame = byTopic.get(topic);
      if (!frame) byTopic.set(topic, (frame = frames.event(topic, delivery.eventJson)));
      send(socket, frame);
    }
  }

  function leave(client: Client): void {
    const entry = users.get(client.userId);
    if (!entry?.clients.delete(client)) return;
    void d.slots.release(client.userId, client.id);
    if (entry.clients.size > 0) return;
    users.delete(client.userId);
    entry.listening.then((stop) => stop()).catch((err) => d.logger.warn({ err, userId: client.userId }, 'could not stop listening to a user channel'));
  }

  /** Each socket is pinged every heartbeatMs; one that has not answered since its previous ping is terminated. */
  const heartbeat = setInterval(() => {
    for (const socket of slices[beat++ % HEARTBEAT_SLICES]!) {
      const state = sockets.get(socket)!;
      if (!state.answered) {
        socket.terminate();
        continue;
      }
      state.answered = false;
      socket.ping();
    }
  }, settings.heartbeatMs / HEARTBEAT_SLICES);
  heartbeat.unref();

  return {
    send,
    /** Watches a new socket for heartbeats and shutdown; returns what to call once it has closed. */
    track(socket: WebSocket): () => void {
      const state = { answered: true, slice: slices[nextSlice++ % HEARTBEAT_SLICES]! };
      state.slice.add(socket);
      sockets.set(socket, state);
      socket.on('pong', () => (state.answered = true));
      return () => {
        state.slice.delete(socket);
        sockets.delete(socket);
        if (sockets.size === 0) drained?.();
      };
    },

    /**
     * Adds an authenticated socket; resolves once its user's channel is listened
     * to, so every event relayed afterwards reaches it. False when the user
     * already holds the most sockets allowed (across the cluster with Redis).
     */
    async join(client: Client): Promise<boolean> {
      if (!(await d.slots.take(client.userId, client.id))) return false;
      let entry = users.get(client.userId);
      if (!entry) {
        const created: UserSockets = { clients: new Set(), listening: undefined! };
        created.listening = d.broadcast.subscribe(userChannel(client.userId), (message) => deliver(created, message));
        users.set(client.userId, (entry = created));
      }
      entry.clients.add(client);
      try {
        await entry.listening;
      } catch (err) {
        leave(client);
        throw err;
      }
      return true;
    },

    /** Removes a socket; the last one of a user stops the listening to their channel. */
    leave,

    stats: () => ({ sockets: sockets.size, users: users.size, droppedSlow: dropped }),

    /** Closes every socket with 1001, and terminates what has not finished closing after a grace period. */
    async shutdown(): Promise<void> {
      if (sockets.size === 0) return;
      const done = new Promise<void>((resolve) => (drained = resolve));
      for (const socket of sockets.keys()) socket.close(CLOSE.goingAway, 'server shutting down');
      const timer = setTimeout(() => {
        for (const socket of sockets.keys()) socket.terminate();
      }, CLOSE_GRACE_MS);
      await done;
      clearTimeout(timer);
    },

    async close(): Promise<void> {
      clearInterval(heartbeat);
      const entries = [...users.values()];
      users.clear();
      await Promise.allSettled(entries.map(async (e) => (await e.listening)()));
      await d.slots.close();
    },
  };
}

export type Gateway = ReturnType<typeof createGateway>;
