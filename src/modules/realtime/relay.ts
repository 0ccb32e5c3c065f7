import type { Handler } from '../../platform/bus/bus.ts';
import type { EventType } from '../../platform/bus/events.ts';
import type { Broadcast } from '../../platform/broadcast/broadcast.ts';
import type { Logger } from '../../platform/observability/logger.ts';
import type { TopicRegistry } from './topics.ts';

/** The broadcast topic every instance holding a socket of this user listens to. */
export const userChannel = (userId: string) => `user:${userId}`;

/** The broadcast topic of a topic with an audience (see TopicDefinition.audience): every instance with a socket following it listens. */
export const topicChannel = (topic: string) => `topic:${topic}`;

/**
 * What travels on a user's channel: the event's topics (space-separated), a
 * newline, then the event as the client receives it. The gateway routes on
 * the first line and splices the rest into frames without parsing it again.
 */
export const encodeDelivery = (topics: string[], eventJson: string) => `${topics.join(' ')}\n${eventJson}`;

export function decodeDelivery(message: string): { topics: string[]; eventJson: string } | undefined {
  const nl = message.indexOf('\n');
  if (nl < 0) return undefined;
  return { topics: message.slice(0, nl).split(' '), eventJson: message.slice(nl + 1) };
}

/**
 * What travels on a user's channel, instead of an event, when one of their credentials may have ended: each
 * instance checks that user's sockets again at once. It has no newline, so an instance that does not know it
 * (a rolling deploy) takes it for no delivery and drops it.
 */
export const RECHECK = 'recheck';

/**
 * The bus events after which a user's sockets are checked again: never sent to a socket. What else the change
 * ended is already told to every instance's caches (API keys, bans) by then: those broadcasts go out as it
 * commits, these only after its outbox job, the bus and this relay.
 */
export const ACCESS_EVENTS = ['user.access_revoked', 'api_key.deleted'] as const satisfies readonly EventType[];
const accessEvents = new Set<string>(ACCESS_EVENTS);

export const RELAY_GROUP = 'realtime';

/**
 * Bus → sockets. Every serve instance runs one, all in the consumer group
 * `realtime`, so each event is relayed once (at least once: a redelivery may
 * repeat it; clients de-duplicate by event id) to the user's channel, which
 * reaches every instance holding a socket of that user; or, for a topic with
 * an audience (a document's), to the topic's channel, which reaches every
 * instance holding a socket that follows it, whoever's it is. An ACCESS_EVENTS event goes to the user's
 * channel as RECHECK.
 */
export function createRelay(d: { broadcast: Broadcast; topics: TopicRegistry; logger: Logger }): Handler<EventType> {
  return async (event) => {
    const payload = event.payload as { userId: string } & Record<string, unknown>;
    if (accessEvents.has(event.type)) {
      // Awaited, unlike events: a recheck lost here leaves a socket open until its periodic check, so a failed
      // publish is the bus's to retry.
      return void (await d.broadcast.publish(userChannel(payload.userId), RECHECK));
    }
    const eventJson = JSON.stringify({ id: event.id, type: event.type, payload, occurredAt: event.occurredAt });
    // Not awaited: a consumer handles its events one after another, so a round trip saved here
    // is relay throughput. The publish goes out before the bus's ack, on the same Redis connection
    // (both adapters use deps.redis), so a relay that dies in between leaves the event unacked.
    const topics = d.topics.route(event.type, payload);
    const channel = d.topics.hasAudience(topics[0]) ? topicChannel(topics[0]!) : userChannel(payload.userId);
    d.broadcast.publish(channel, encodeDelivery(topics, eventJson)).catch((err) => {
      d.logger.warn({ err, eventId: event.id, type: event.type }, 'real-time event not fanned out; sockets miss it');
    });
  };
}
