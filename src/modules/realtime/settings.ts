import { z } from 'zod';
import { envInt, envMs } from '../../platform/config/env.ts';

export interface RealtimeSettings {
  /** Open sockets per user, across every instance sharing the Redis (else in this process); one more is closed with 4429. 0: no limit. */
  maxConnectionsPerUser: number;
  /** A socket not authenticated this long after it opened is closed with 4408. */
  authTimeoutMs: number;
  /** Sockets not yet authenticated per client address (an IPv6 /64) in this process; one more upgrade is refused with 429. 0: no limit. */
  maxPendingPerIp: number;
  /**
   * How often an open socket's credential is checked again, besides at once when
   * one of its user's may have ended (a revoked session, a deleted key, a
   * disabled or deleted account, a user or key ban): what nothing announces (an
   * expired token or key, an IP ban) closes the socket (4401/4403) within this long.
   */
  reauthMs: number;
  /** Ping interval; a socket that has not answered the previous ping by the next one is terminated. */
  heartbeatMs: number;
  /** Bytes queued for a socket beyond which it is a slow consumer and closed with 1013. */
  maxBufferedBytes: number;
  /** Topics one socket may be subscribed to at once. */
  maxSubscriptions: number;
  /** Largest message a client may send (clients send only small control messages). */
  maxMessageBytes: number;
}

/** The env fields config.ts validates for this module. */
export const realtimeEnv = {
  WS_MAX_CONNECTIONS_PER_USER: envInt(0, 100_000).default(10),
  WS_AUTH_TIMEOUT_MS: envMs(50).default(5_000),
  WS_MAX_PENDING_PER_IP: envInt(0, 100_000).default(50),
  WS_HEARTBEAT_MS: envMs(50).default(30_000),
  WS_REAUTH_MS: envMs(50).default(30_000),
  WS_MAX_BUFFERED_BYTES: envInt(1_024, 1024 ** 3).default(1_048_576),
  WS_MAX_SUBSCRIPTIONS: envInt(1, 10_000).default(100),
  WS_MAX_MESSAGE_BYTES: envInt(256, 1_048_576).default(16_384),
};

const realtimeEnvObject = z.object(realtimeEnv);

export function realtimeSettings(e: z.output<typeof realtimeEnvObject>): RealtimeSettings {
  return {
    maxConnectionsPerUser: e.WS_MAX_CONNECTIONS_PER_USER,
    authTimeoutMs: e.WS_AUTH_TIMEOUT_MS,
    maxPendingPerIp: e.WS_MAX_PENDING_PER_IP,
    heartbeatMs: e.WS_HEARTBEAT_MS,
    reauthMs: e.WS_REAUTH_MS,
    maxBufferedBytes: e.WS_MAX_BUFFERED_BYTES,
    maxSubscriptions: e.WS_MAX_SUBSCRIPTIONS,
    maxMessageBytes: e.WS_MAX_MESSAGE_BYTES,
  };
}
