import type { WebSocket } from 'ws';
import type { Broadcast } from '../../platform/broadcast/broadcast.ts';
import type { Logger } from '../../platform/observability/logger.ts';
import { CLOSE, frames } from './protocol.ts';
import { decodeDelivery, RECHECK, topicChannel, userChannel } from './relay.ts';
import type { RealtimeSettings } from './settings.ts';
import type { ConnectionSlots } from './slots.ts';
import type { Topic } from './topics.ts';

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
  /** The client's address, as HTTP requests see it (TRUST_PROXY): an IP ban that covers it checks the socket again. */
  address: string;
  /** Checks the socket's credential again, after the messages it is handling; one that no longer holds closes it. */
  recheck(): void;
}

interface UserSockets {
  clients: Set<Client>;
  /** The broadcast subscription to the user's channel, shared by all their sockets on this instance. */
  listening: Promise<() => Promise<void>>;
}

/** The sockets of this instance following one topic with an audience, and the events waiting for its check. */
interface TopicFollowers {
  topic: Topic;
  clients: Set<Client>;
  /** The broadcast subscription to the topic's channel, shared by every socket here that follows it. */
  listening: Promise<() => Promise<void>>;
  waiting: string[];
  checking: boolean;
}

/**
 * The sockets of one instance: who is connected, the user channels it listens
 * to (one broadcast subscription per user with at least one socket here: their
 * events, and RECHECK when one of their credentials may have ended), the
 * channels of topics with an audience its sockets follow (one per topic), event
 * delivery with backpressure, heartbeats and shutdown.
 */
export function createGateway(d: { broadcast: Broadcast; slots: ConnectionSlots; settings: RealtimeSettings; logger: Logger }) {
  const { settings } = d;
  const users = new Map<string, UserSockets>();
  const followed = new Map<string, TopicFollowers>();
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

  function deliver(clients: Iterable<Client>, message: string) {
    const delivery = decodeDelivery(message);
    if (!delivery) return;
    const byTopic = new Map<string, string>();
    for (const client of clients) {
      const topic = delivery.topics.find((t) => client.topics.has(t));
      const { socket } = client;
      if (!topic || socket.readyState !== OPEN) continue;
      let frame = byTopic.get(topic);
      if (!frame) byTopic.set(topic, (frame = frames.event(topic, delivery.eventJson)));
      send(socket, frame);
    }
  }

  /**
   * Hands a topic's events to the sockets following it whose users its audience still allows: one check for
   * the events that arrived while the previous one ran, so a burst costs one query, and they go out in order.
   */
  async function check(entry: TopicFollowers): Promise<void> {
    entry.checking = true;
    try {
      while (entry.waiting.length) {
        const messages = entry.waiting.splice(0);
        const clients = [...entry.clients];
        let allowed: Set<string>;
        try {
          allowed = new Set(await entry.topic.definition.audience!(entry.topic.id!, [...new Set(clients.map((c) => c.userId))]));
        } catch (err) {
          d.logger.warn({ err, topic: entry.topic.name, events: messages.length }, "could not tell who may hear a topic's events; its sockets miss them");
          continue;
        }
        const audience = clients.filter((c) => allowed.has(c.userId));
        for (const message of messages) deliver(audience, message);
      }
    } finally {
      entry.checking = false;
    }
  }

  function unfollow(client: Client, name: string): void {
    const entry = followed.get(name);
    if (!entry?.clients.delete(client) || entry.clients.size > 0) return;
    followed.delete(name);
    entry.listening.then((stop) => stop()).catch((err) => d.logger.warn({ err, topic: name }, 'could not stop listening to a topic channel'));
  }

  function leave(client: Client): void {
    for (const name of client.topics) unfollow(client, name);
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
        created.listening = d.broadcast.subscribe(userChannel(client.userId), (message) => {
          if (message !== RECHECK) return deliver(created.clients, message);
          for (const c of created.clients) c.recheck();
        });
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

    /** Removes a socket; the last one of a user stops the listening to their channel, the last follower of a topic to its. */
    leave,

    /** Checks again the credential of each authenticated socket here that `which` picks (those of an address just banned). */
    recheckWhere(which: (client: Client) => boolean): void {
      for (const entry of users.values()) for (const client of entry.clients) if (which(client)) client.recheck();
    },

    /**
     * A socket follows a topic with an audience (the caller authorized it); resolves once the topic's channel is
     * listened to here, so every event relayed afterwards reaches it (if its user is still in the audience then).
     */
    async follow(client: Client, topic: Topic): Promise<void> {
      let entry = followed.get(topic.name);
      if (!entry) {
        const created: TopicFollowers = { topic, clients: new Set(), listening: undefined!, waiting: [], checking: false };
        created.listening = d.broadcast.subscribe(topicChannel(topic.name), (message) => {
          created.waiting.push(message);
          if (!created.checking) check(created).catch((err) => d.logger.error({ err, topic: topic.name }, "a topic's events could not be delivered"));
        });
        followed.set(topic.name, (entry = created));
      }
      entry.clients.add(client);
      try {
        await entry.listening;
      } catch (err) {
        unfollow(client, topic.name);
        throw err;
      }
    },

    /** A socket stops following a topic (a no-op for one it does not follow this way); the last one stops the listening. */
    unfollow,

    stats: () => ({ sockets: sockets.size, users: users.size, followedTopics: followed.size, droppedSlow: dropped }),

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
      const entries = [...users.values(), ...followed.values()];
      users.clear();
      followed.clear();
      await Promise.allSettled(entries.map(async (e) => (await e.listening)()));
      await d.slots.close();
    },
  };
}

export type Gateway = ReturnType<typeof createGateway>;
