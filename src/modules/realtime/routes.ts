import type { Duplex } from 'node:stream';
import fastifyWebsocket from '@fastify/websocket';
import type { FastifyRequest } from 'fastify';
import { Counter, Gauge, type Registry } from 'prom-client';
import { AppError, RateLimited } from '../../errors.ts';
import { ACCESS_COOKIE, originAllowed } from '../../http/guards.ts';
import { problemSchema, rawProblem } from '../../http/problem.ts';
import type { App } from '../../http/types.ts';
import type { RouteContext } from '../module.ts';
import { acceptConnection, type ConnectionDeps } from './connection.ts';
import type { Gateway } from './gateway.ts';
import { pendingSockets } from './pending.ts';
import { SUBPROTOCOL, subprotocolToken } from './protocol.ts';

const DESCRIPTION = [
  'Upgrade to a WebSocket (subprotocol `parley.v1`). Authenticate with the subprotocol `parley.auth.<token>`, the access cookie from an allowed Origin,',
  'or a first message `{"type":"auth","token":…}`; never in the URL. A revoked session, deleted key, disabled or deleted account, or a user or key ban closes the socket',
  'at once, on every instance (4401/4403), as does an IP ban on its address (but for admins, until their role is changed); what nothing announces (an expired token or key) within WS_REAUTH_MS (default 30 s), when the credential is checked again; send `{"type":"auth","token":…}` with a refreshed token of the same user to go on (answered by `ready`). Then `{"type":"subscribe","topic":…}` to `conversation:<id>`, `conversations`,',
  '`job:<id>`, `jobs`, `file:<id>`, `files`, `document:<id>`, `documents`, `user`, `notifications` or `knowledge` (your own only) and receive `{"type":"event","topic","event":{id,type,payload,occurredAt}}` frames.',
  'Close codes: 1001 shutdown, 1008 flooding, 1009 message too big, 1013 slow consumer, 4400 malformed messages, 4401 bad credential,',
  '4403 banned, 4408 no credential in time, 4429 too many sockets for this user. A plain GET gets 426. An upgrade is refused with 429 `too_many_pending_sockets`',
  'while WS_MAX_PENDING_PER_IP sockets of its address have yet to authenticate, and with 403 `banned` from a banned address unless it carries its credential.',
].join(' ');

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
  return cookie && origin && originAllowed(request, origin, allowedOrigins) ? cookie : undefined;
}

/**
 * An upgrade `ws` refused (no valid Sec-WebSocket-Key, an unknown version, a
 * malformed Sec-WebSocket-Protocol), answered as every other error is: a
 * problem, where `ws` alone would write a text/html 400.
 */
function refuseHandshake(err: Error, socket: Duplex) {
  if (!socket.writable) return void socket.destroy();
  const versionHeader = /Sec-WebSocket-Version/.test(err.message) ? { 'sec-websocket-version': '13, 8' } : undefined;
  socket.once('finish', () => socket.destroy());
  socket.end(rawProblem(400, 'invalid_websocket_handshake', `${err.message} in the WebSocket upgrade request`, versionHeader));
}

/** GET /v1/ws: the real-time gateway (protocol in protocol.ts and docs/api.md). */
export function realtimeRoutes(app: App, { services, config }: RouteContext<'realtime' | 'authenticate' | 'limits'>) {
  const { gateway, topics, settings, logger, registry } = services.realtime;
  const shared = { gateway, authenticate: services.authenticate, topics, settings, logger };
  const pending = pendingSockets(settings.maxPendingPerIp);
  // An IP ban reaches every instance: each checks its sockets from the address again (admins' stay: IP bans spare them).
  services.limits.onAddressBanned((covers) => gateway.recheckWhere((client) => covers(client.address)));
  /** The place each admitted upgrade holds among its address's unauthenticated sockets, given back by the handler's socket. */
  const places = new WeakMap<FastifyRequest, () => void>();

  /**
   * Before the upgrade, with the client address HTTP requests see (TRUST_PROXY): an upgrade with no credential is
   * nobody yet, so a banned address is refused now (as its sign-up would be) rather than holding a socket until
   * its first message; one with a credential is checked as that credential's requests are (admins are never
   * refused by an IP ban). Then a place among the address's unauthenticated sockets, held until the socket
   * authenticates or its connection ends (also when the upgrade never completes).
   */
  async function admitUpgrade(request: FastifyRequest) {
    if (!request.ws) return;
    if (!upgradeCredential(request, config.allowedOrigins)) await services.limits.refuseBannedAddress(request);
    const release = pending.take(request.ip);
    if (!release) {
      throw RateLimited(
        settings.authTimeoutMs / 1000,
        `${settings.maxPendingPerIp} WebSockets from this address have yet to authenticate; authenticate those (or close them) first`,
        'too_many_pending_sockets',
      );
    }
    places.set(request, release);
    // Gone while its address's ban was looked up: no close is coming to give the place back.
    if (request.socket.destroyed) release();
    else request.socket.once('close', release);
  }

  app.register(async (scope) => {
    scope.addHook('onReady', async () => {
      exportMetrics(registry, gateway);
    });
    // Added before the plugin's own preClose (which closes with no code), so clients get 1001.
    scope.addHook('preClose', () => gateway.shutdown());
    scope.addHook('onClose', async () => {
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
    scope.websocketServer.on('wsClientError', refuseHandshake);
    scope.route({
      method: 'GET',
      url: '/ws',
      schema: {
        tags: ['realtime'],
        summary: 'Real-time events (WebSocket)',
        description: DESCRIPTION,
        response: { 403: problemSchema, 426: problemSchema, 429: problemSchema },
      },
      onRequest: admitUpgrade,
      // A plain GET (no Upgrade) gets this; an upgrade goes to wsHandler.
      handler: async () => {
        throw new AppError(426, 'upgrade_required', 'Upgrade Required', 'GET /v1/ws is a WebSocket endpoint', { headers: { upgrade: 'websocket' } });
      },
      wsHandler: (socket, request) => {
        const connection: ConnectionDeps = {
          ...shared,
          admit: async (p) => void (await services.limits.check(request, p)),
          stillAdmitted: (p) => services.limits.refuseBanned(request, p),
          address: request.ip,
          authenticated: () => places.get(request)?.(),
        };
        acceptConnection(socket, upgradeCredential(request, config.allowedOrigins), connection);
      },
    });
  });
}
