import fastifyWebsocket from '@fastify/websocket';
import type { FastifyRequest } from 'fastify';
import { Counter, Gauge, type Registry } from 'prom-client';
import { ACCESS_COOKIE } from '../../http/guards.ts';
import type { App, RouteContext } from '../../http/types.ts';
import { acceptConnection, type ConnectionDeps } from './connection.ts';
import { createGateway, type Gateway } from './gateway.ts';
import { SUBPROTOCOL, subprotocolToken } from './protocol.ts';
import { createRelay } from './relay.ts';
import { createTopicAccess } from './topics.ts';

/** Read from the gateway when scraped; replaced by the latest app built over the same registry. */
function exportMetrics(registry: Registry, gateway: Gateway) {
  registry.removeSingleMetric('parley_ws_connections');
  registry.removeSingleMetric('parley_ws_slow_consumers_dropped_total');
  new Gauge({
    name: 'parley_ws_connections',
    help: 'Open WebSocket connections on this instance',
    registers: [registry],
    collect() {
      this.set(gateway.stats().sockets);
    },
  });
  new Counter({
    name: 'parley_ws_slow_consumers_dropped_total',
    help: 'Sockets closed with 1013 because more than WS_MAX_BUFFERED_BYTES waited to be sent to them',
    registers: [registry],
    collect() {
      this.reset();
      this.inc(gateway.stats().droppedSlow);
    },
  });
}

/**
 * The credential sent with the upgrade: a `parley.auth.<token>` subprotocol,
 * else the browser's access cookie from an allowed Origin (a WebSocket
 * handshake is a GET any site can make with the user's cookies). Never the
 * URL: it ends up in logs. Undefined: the first message must be `auth`.
 */
function upgradeCredential(request: FastifyRequest, allowedOrigins: string[]): string | undefined {
  const offered = subprotocolToken(request.headers['sec-websocket-protocol']);
  if (offered) return offered;
  const cookie = request.cookies?.[ACCESS_COOKIE];
  const origin = request.headers.origin;
  return cookie && origin && allowedOrigins.includes(origin) ? cookie : undefined;
}

/** GET /v1/ws: the real-time gateway (protocol in protocol.ts and the README). Relays bus events while the app runs. */
export function realtimeRoutes(app: App, { deps, services }: RouteContext) {
  const settings = deps.config.realtime;
  const gateway = createGateway({ fanout: deps.fanout, settings, logger: deps.logger });
  const relay = createRelay(deps);
  const shared = {
    gateway,
    authenticate: services.authenticate,
    access: createTopicAccess({ conversations: services.conversations, queue: deps.queue }),
    settings,
    logger: deps.logger,
  };

  app.register(async (scope) => {
    scope.addHook('onReady', async () => {
      await relay.start();
      exportMetrics(deps.metrics.registry, gateway);
    });
    // Added before the plugin's own preClose (which closes with no code), so clients get 1001.
    scope.addHook('preClose', () => gateway.shutdown());
    scope.addHook('onClose', async () => {
      await relay.stop();
      await gateway.close();
    });
    await scope.register(fastifyWebsocket, {
      options: {
        maxPayload: settings.maxMessageBytes,
        clientTracking: false,
        handleProtocols: (offered) => (offered.has(SUBPROTOCOL) ? SUBPROTOCOL : false),
      },
      errorHandler(err, socket, request) {
        request.log.debug({ err }, 'websocket error');
        // Still CLOSING: ws is sending its close frame (1009 for a message too big); let it finish.
        if (socket.readyState !== socket.CLOSING) socket.terminate();
      },
    });
    scope.get('/ws', { websocket: true, schema: { hide: true } }, (socket, request) => {
      const connection: ConnectionDeps = { ...shared, admit: async (p) => void (await services.limits.check(request, p)) };
      acceptConnection(socket, upgradeCredential(request, deps.config.allowedOrigins), connection);
    });
  });
}
