import { z } from 'zod';
import { opaqueCursor } from '../../http/pagination.ts';
import type { McpServerRow } from './schema.ts';
import type { ServerTool } from './service.ts';

/** Lower-case letters and digits in words joined by one `-` or `_` (never `__`, which separates server and tool in a tool name). */
const SERVER_NAME = /^[a-z0-9]+(?:[-_][a-z0-9]+)*$/;
const TOOL_NAME = /^[a-zA-Z0-9_-]{1,64}$/;
/** Headers the transport sets itself, or that would change what the request is. */
const RESERVED_HEADERS = new Set(['host', 'content-length', 'content-type', 'accept', 'connection', 'transfer-encoding', 'mcp-session-id', 'mcp-protocol-version', 'last-event-id']);

export const serverSchema = z
  .object({
    id: z.uuid(),
    projectId: z.uuid().nullable(),
    name: z.string(),
    url: z.string(),
    description: z.string().nullable(),
    hasCredentials: z.boolean().describe('Whether headers are set (never shown)'),
    allowedTools: z.array(z.string()).nullable().describe("The server's tools offered; null offers all"),
    enabled: z.boolean(),
    needsApproval: z.boolean(),
    createdAt: z.string(),
    updatedAt: z.string(),
  })
  .meta({ id: 'McpServer' });

export const toServer = (s: McpServerRow) => ({
  id: s.id,
  projectId: s.projectId,
  name: s.name,
  url: s.url,
  description: s.description,
  hasCredentials: s.credentialsEnc !== null,
  allowedTools: s.allowedTools,
  enabled: s.enabled,
  needsApproval: s.needsApproval,
  createdAt: s.createdAt.toISOString(),
  updatedAt: s.updatedAt.toISOString(),
});

export const serverToolSchema = z
  .object({
    name: z.string().describe("The server's name for it"),
    toolName: z.string().describe('The name the model sees: `<server>__<tool>`'),
    description: z.string().nullable(),
    inputSchema: z.record(z.string(), z.unknown()),
    allowed: z.boolean().describe("On the server's allow-list (or it has none)"),
    disabled: z.boolean().describe('Switched off by you'),
  })
  .meta({ id: 'McpServerTool' });

export const toServerTool = (t: ServerTool) => ({ name: t.name, toolName: t.toolName, description: t.description ?? null, inputSchema: t.inputSchema, allowed: t.allowed, disabled: t.disabled });

const name = z.string().trim().min(1).max(32).regex(SERVER_NAME, 'lower-case letters and digits, words joined by one "-" or "_"');
const url = z.string().trim().min(1).max(2000);
const description = z.string().trim().max(500).nullable();
const credentials = z
  .record(
    z.string().regex(/^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,100}$/, 'a header name').refine((h) => !RESERVED_HEADERS.has(h.toLowerCase()), 'a header the transport sets itself'),
    z.string().min(1).max(4096).regex(/^[^\r\n\0]*$/, 'a header value on one line'),
  )
  .refine((h) => Object.keys(h).length <= 10, 'at most 10 headers')
  .nullable()
  .describe('Headers sent with every request (e.g. `{"Authorization": "Bearer …"}`); kept encrypted, never shown again; null removes them');
const allowedTools = z.array(z.string().trim().min(1).max(128)).max(500).nullable().describe("The server's tool names to offer; null (the default) offers every one it lists");

export const createServerBody = z
  .object({ name, url, description: description.optional(), credentials: credentials.optional(), allowedTools: allowedTools.optional(), enabled: z.boolean().optional(), needsApproval: z.boolean().optional() })
  .strict();
export const updateServerBody = createServerBody
  .partial()
  .strict()
  .refine((b) => Object.keys(b).length > 0, 'nothing to change');

export const projectServersParams = z.object({ id: z.uuid() });
export const projectServerParams = z.object({ id: z.uuid(), serverId: z.uuid() });
export const serverParams = z.object({ serverId: z.uuid() });
export const toolParams = z.object({ name: z.string().regex(TOOL_NAME, 'a tool name (`<server>__<tool>`)') });

export const disabledToolSchema = z.object({ name: z.string(), disabledAt: z.string() }).meta({ id: 'McpDisabledTool' });
export const disabledQuery = z.object({
  limit: z.coerce.number().int().min(1).max(500).default(100),
  cursor: opaqueCursor((after) => (TOOL_NAME.test(after) ? after : undefined)),
});
