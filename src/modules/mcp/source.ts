import { ToolError, type Tool, type ToolScope, type ToolSource } from '../tools/index.ts';
import type { Logger } from '../../platform/observability/logger.ts';
import { clip } from '../../platform/text.ts';
import { callTool, type ConnectionLimits, type Endpoint, type RemoteResult, type RemoteTool } from './connection.ts';
import { describeFailure, toolNameOf } from './names.ts';
import type { McpServerRow } from './schema.ts';

/** What the source needs of the service: the servers of a turn, and how to reach one. */
export interface McpToolDeps {
  /** The enabled servers of a turn, project's first, with their (cached) tools; the user's switched-off names. */
  offeredTo(userId: string, projectId: string | null): Promise<{ servers: Array<{ row: McpServerRow; tools: RemoteTool[] }>; disabled: Set<string> }>;
  endpointOf(row: McpServerRow): Endpoint;
  limits: ConnectionLimits;
  timeoutMs: number;
  logger: Logger;
}

/**
 * MCP tools one turn offers at most: every tool goes to the model with each request, and the model APIs take
 * at most 128 (OpenAI's limit), so a server listing hundreds would fail every turn of its users, built-in tools
 * and all. Room is left for a project's own tools; the first ones (the project's servers, each in its order) win.
 */
export const MAX_TOOLS_PER_TURN = 100;
/** A tool's description as the model reads it, at most: a server's words, sent with every request of every turn. */
export const MAX_DESCRIPTION_CHARS = 1_024;
/** Control characters (but line breaks and tabs) and bidirectional overrides: nothing a model or a console should be shown. */
const CONTROLS = /(?![\n\t])[\p{Cc}\u202A-\u202E\u2066-\u2069]/gu;

/** A server's description of its tool, made fit to send with every request. */
const descriptionOf = (text: string) => clip(text.replace(CONTROLS, '').trim(), MAX_DESCRIPTION_CHARS);

/** The text of a result: its text parts joined, other parts named (an image, a resource). */
function textOf(result: RemoteResult): string {
  return (result.content ?? [])
    .map((part) => {
      if (part.type === 'text') return part.text ?? '';
      if (part.type === 'resource') return part.resource?.text ?? `[resource ${part.resource?.uri ?? ''}]`;
      if (part.type === 'resource_link') return `[resource ${part.uri ?? ''}]`;
      return `[${part.type}${part.mimeType ? ` ${part.mimeType}` : ''}]`;
    })
    .join('\n');
}

/** The arguments' schema as the toolbox's validator reads it: an object schema, without a `$schema` it may not know. */
function parametersOf(tool: RemoteTool): Record<string, unknown> {
  const { $schema: _, ...schema } = tool.inputSchema ?? {};
  return { ...schema, type: 'object' };
}

function toolOf(mcp: McpToolDeps, row: McpServerRow, remote: RemoteTool, name: string): Tool {
  return {
    name,
    description: descriptionOf(remote.description ?? '') || `The tool "${remote.name}" of the MCP server "${row.name}"`,
    parameters: parametersOf(remote),
    needsApproval: row.needsApproval,
    timeoutMs: mcp.timeoutMs,
    async run(args, ctx) {
      let result: RemoteResult;
      try {
        result = await callTool(mcp.endpointOf(row), mcp.limits, ctx.signal, remote.name, args);
      } catch (err) {
        // The turn stopped or the time is up: the toolbox says which.
        if (ctx.signal.aborted) throw err;
        mcp.logger.warn({ serverId: row.id, tool: remote.name, reason: describeFailure(err) }, 'an MCP tool call failed');
        throw new ToolError(describeFailure(err), 'mcp_unavailable');
      }
      if (result.isError) throw new ToolError(textOf(result) || `The tool "${remote.name}" reported an error`, 'mcp_tool_error');
      if (result.structuredContent && typeof result.structuredContent === 'object') return result.structuredContent;
      return textOf(result);
    },
  };
}

/**
 * The MCP tools of a turn: those of the project's enabled servers, then the
 * user's own, each narrowed to its server's allow-list and to what the user
 * has not switched off. Offered without the project naming them (the
 * allow-list chose). A name two servers share goes to the first (the
 * project's). A server that cannot be listed adds nothing (logged); tools past
 * MAX_TOOLS_PER_TURN are left out (logged).
 */
export function mcpToolSource(mcp: McpToolDeps): ToolSource {
  return {
    offersAll: true,
    async list(scope: ToolScope): Promise<Tool[]> {
      const { servers, disabled } = await mcp.offeredTo(scope.userId, scope.projectId);
      const tools = new Map<string, Tool>();
      const left = new Map<string, number>();
      for (const { row, tools: remote } of servers) {
        for (const t of remote) {
          if (row.allowedTools !== null && !row.allowedTools.includes(t.name)) continue;
          const name = toolNameOf(row.name, t.name);
          if (disabled.has(name) || tools.has(name)) continue;
          if (tools.size >= MAX_TOOLS_PER_TURN) left.set(row.id, (left.get(row.id) ?? 0) + 1);
          else tools.set(name, toolOf(mcp, row, t, name));
        }
      }
      if (left.size) mcp.logger.warn({ userId: scope.userId, projectId: scope.projectId, left: Object.fromEntries(left) }, `MCP tools past ${MAX_TOOLS_PER_TURN} in a turn were left out (narrow the servers' allow-lists)`);
      return [...tools.values()];
    },
  };
}
