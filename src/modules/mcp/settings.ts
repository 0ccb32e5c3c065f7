import { z } from 'zod';
import { envBool, envInt, envMs } from '../../platform/config/env.ts';

export interface McpSettings {
  /** Accept plain http and private, loopback and link-local addresses (a closed network, tests). */
  allowPrivate: boolean;
  /** A tool call without an answer after this long fails (the model is told). */
  timeoutMs: number;
  /** Listing a server's tools (connect and `tools/list`) gives up after this long: a turn waits at most this for a server. */
  listTimeoutMs: number;
  /** A server's tool list is reused this long before it is asked again. */
  cacheMs: number;
  /** The listings one process keeps at most, by their size as JSON; the least recently used go first. */
  cacheMaxBytes: number;
  /** Servers one project, or one user for themselves, may register. */
  maxServers: number;
  /** The most bytes read from a server in one session (a listing with its pages, or a call), all its answers together. */
  maxResponseBytes: number;
}

export const mcpEnv = {
  MCP_ALLOW_PRIVATE: envBool.default(false),
  MCP_TIMEOUT_MS: envMs(100, 600_000).default(30_000),
  MCP_LIST_TIMEOUT_MS: envMs(100, 60_000).default(5_000),
  MCP_CACHE_MS: envMs(0, 3_600_000).default(60_000),
  MCP_CACHE_MAX_BYTES: envInt(0, 1024 ** 3).default(64 * 1024 * 1024),
  MCP_MAX_SERVERS: envInt(1, 1000).default(20),
  MCP_MAX_RESPONSE_BYTES: envInt(1024, 1024 ** 3).default(4 * 1024 * 1024),
};

const mcpEnvObject = z.object(mcpEnv);

export function mcpSettings(e: z.output<typeof mcpEnvObject>): McpSettings {
  return {
    allowPrivate: e.MCP_ALLOW_PRIVATE,
    timeoutMs: e.MCP_TIMEOUT_MS,
    listTimeoutMs: e.MCP_LIST_TIMEOUT_MS,
    cacheMs: e.MCP_CACHE_MS,
    cacheMaxBytes: e.MCP_CACHE_MAX_BYTES,
    maxServers: e.MCP_MAX_SERVERS,
    maxResponseBytes: e.MCP_MAX_RESPONSE_BYTES,
  };
}
