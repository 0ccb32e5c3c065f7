import { Forbidden } from '../../errors.ts';
import type { EventType } from '../../platform/bus/events.ts';
import type { Principal } from '../auth/index.ts';
import type { TopicDefinition, Topics } from '../module.ts';

/**
 * What a socket can subscribe to, always within its own user: each module
 * declares its topics (a `name`, or `name:<uuid>` when `withId`) and how its
 * bus events reach them (see each module's index.ts `topics`). Today:
 *   conversation:<id>, conversations   chat's message.* events
 *   job:<id>, jobs                     job.progress
 *   user                               user.updated
 *   document:<id>, documents           document.presence and document.saved (one per change, to every reader following it), document.shared
 *   notifications                      notification.created, notification.read (the notifications module)
 */
export interface Topic {
  name: string;
  definition: TopicDefinition;
  id?: string;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Every module's topics, read once on first use (all services exist by then). */
export function createTopics(declared: () => Topics[]) {
  let built: { byName: Map<string, TopicDefinition>; all: Topics[]; events: EventType[] } | undefined;
  const get = () => {
    if (built) return built;
    const all = declared();
    const byName = new Map(all.flatMap((t) => t.topics.map((d) => [d.name, d] as const)));
    return (built = { byName, all, events: [...new Set(all.flatMap((t) => t.events))] });
  };

  /** A topic name as a topic (ids lower-cased), or undefined if it is not one. */
  function parse(name: string): Topic | undefined {
    const { byName } = get();
    const whole = byName.get(name);
    if (whole && !whole.withId) return { name, definition: whole };
    const i = name.indexOf(':');
    if (i < 0) return undefined;
    const definition = byName.get(name.slice(0, i));
    const id = name.slice(i + 1).toLowerCase();
    if (!definition?.withId || !UUID.test(id)) return undefined;
    return { name: `${definition.name}:${id}`, definition, id };
  }

  return {
    parse,

    /** Who may subscribe to what: only to one's own topics. Throws NotFound for anyone else's, as the HTTP API does. */
    async authorize(p: Principal, topic: Topic): Promise<void> {
      const { scope, authorize } = topic.definition;
      if (p.via === 'api_key' && scope && p.scopes.length && !p.scopes.includes(scope)) {
        throw Forbidden(`This API key lacks the "${scope}" scope`, 'insufficient_scope');
      }
      if (topic.id !== undefined && authorize) await authorize(p, topic.id);
    },

    /** Whether subscribing reads what the topic names (its owner's conversation, document, job): a request's worth of work. */
    needsLookup: (topic: Topic): boolean => topic.id !== undefined && topic.definition.authorize !== undefined,

    /** Whether the topic (a name an event is routed to) has an audience: its events go to its followers, not to the user they name. */
    hasAudience(name: string | undefined): boolean {
      return name !== undefined && parse(name)?.definition.audience !== undefined;
    },

    /** The bus events the relay forwards to sockets. */
    events: () => get().events,

    /**
     * The topics an event is delivered on, most specific first; a socket gets it
     * once, on the first of them it is subscribed to.
     */
    route(type: string, payload: Record<string, unknown>): string[] {
      for (const t of get().all) {
        const names = t.route(type, payload);
        if (names.length) return names;
      }
      return [];
    },
  };
}

export type TopicRegistry = ReturnType<typeof createTopics>;
