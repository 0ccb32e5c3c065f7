import { ToolError, type Tool, type ToolScope, type ToolSource } from '../tools/index.ts';
import type { Logger } from '../../platform/observability/logger.ts';
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
    description: remote.description || `The tool "${remote.name}" of the MCP server "${row.name}"`,
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
 * project's). A server that cannot be listed adds nothing (logged).
 */
export function mcpToolSource(mcp: McpToolDeps): ToolSource {
  return {
    offersAll: true,
    async list(scope: ToolScope): Promise<Tool[]> {
      const { servers, disabled } = await mcp.offeredTo(scope.userId, scope.projectId);
      const tools = new Map<string, Tool>();
      for (const { row, tools: remote } of servers) {
        for (const t of remote) {
          if (row.allowedTools !== null && !row.allowedTools.includes(t.name)) continue;
          const name = toolNameOf(row.name, t.name);
          if (disabled.has(name) || tools.has(name)) continue;
          tools.set(name, toolOf(mcp, row, t, name));
        }
      }
      return [...tools.values()];
    },
  };
}
