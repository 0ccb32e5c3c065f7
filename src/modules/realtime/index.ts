import { defineModule, type ServiceContext } from '../module.ts';
import { createGateway } from './gateway.ts';
import { ACCESS_EVENTS, createRelay, RELAY_GROUP } from './relay.ts';
import { realtimeRoutes } from './routes.ts';
import { realtimeEnv, realtimeSettings, type RealtimeSettings } from './settings.ts';
import { memorySlots, redisSlots } from './slots.ts';
import { createTopics } from './topics.ts';

declare module '../module.ts' {
  interface ServiceMap {
    /** The sockets of this instance, who is connected on any instance, the bus → sockets relay, and every module's topics. */
    realtime: ReturnType<typeof createRealtime>;
  }
  interface ModuleSettings {
    /** The /v1/ws gateway: auth timeout, heartbeat, backpressure and connection limits. */
    realtime: RealtimeSettings;
  }
}

/** How long a socket's presence (and connection slot) outlives the last renewal by its instance: a crashed instance's sockets stop counting after this. */
export const PRESENCE_TTL_MS = 60_000;

function createRealtime({ deps, config, topics }: ServiceContext<never>) {
  const settings = config.realtime;
  const limit = settings.maxConnectionsPerUser;
  // With Redis, instances share a load balancer's sockets: the limit and presence hold across them.
  const slots = deps.redis ? redisSlots(deps.redis, config.redisPrefix, { limit, logger: deps.logger, ttlMs: PRESENCE_TTL_MS }) : memorySlots(limit);
  const registry = createTopics(topics);
  return {
    gateway: createGateway({ broadcast: deps.broadcast, slots, settings, logger: deps.logger }),
    /**
     * Whether the user has an authenticated WebSocket open on any instance (presence). With Redis, each
     * instance renews its sockets' entries every PRESENCE_TTL_MS / 3; those of an instance that crashed
     * lapse PRESENCE_TTL_MS after its last renewal, so its users stop counting as connected within a minute.
     * Rejects when Redis cannot be reached (and this instance holds none of the user's sockets).
     */
    connected: (userId: string): Promise<boolean> => slots.connected(userId),
    relay: createRelay({ broadcast: deps.broadcast, topics: registry, logger: deps.logger }),
    topics: registry,
    settings,
    logger: deps.logger,
    registry: deps.metrics.registry,
  };
}

/** Real-time: the WebSocket gateway at /v1/ws, fed by the bus, across instances; topics come from every module. */
export const realtimeModule = defineModule({
  name: 'realtime',
  config: { env: realtimeEnv, read: realtimeSettings },
  needs: ['authenticate', 'limits'],
  provides: ['realtime'],
  services: (ctx) => ({ realtime: createRealtime(ctx) }),
  routes: realtimeRoutes,
  // Bus → sockets: every serve instance relays, all in one consumer group, so each event is relayed once; with
  // it, each change that may end a user's credential, for every instance to check that user's sockets again.
  subscriptions: ({ services }) => [{ group: RELAY_GROUP, types: [...services.realtime.topics.events(), ...ACCESS_EVENTS], handler: services.realtime.relay }],
});
