/**
 * The contract between the tool loop (chat) and whatever a model may call:
 * built-in tools, a module's own, a deployment's, an MCP server's. A module
 * contributes a ToolSource through its `tools` field (module.ts); the loop
 * asks every source for the tools of a turn's caller and runs the ones the
 * model calls.
 */

/** Whose turn it is: what a source lists tools for and a tool acts on behalf of. */
export interface ToolScope {
  userId: string;
  projectId: string | null;
  conversationId: string | null;
  apiKeyId: string | null;
}

/** Per-project limits a tool runs under, already capped by the deployment. */
export interface ToolLimits {
  /** CPU time for a sandbox run. */
  sandboxTimeoutMs?: number;
  /** Heap for a sandbox run. */
  sandboxMemoryMb?: number;
}

/** What a tool gets when it runs. */
export interface ToolRunContext extends ToolScope {
  /** Aborts when the turn is cancelled or the tool's time is up: stop and throw. */
  signal: AbortSignal;
  limits: ToolLimits;
}

export interface Tool {
  /** `^[a-zA-Z0-9_-]{1,64}$`, unique across sources (MCP tools are prefixed with their server's name). */
  name: string;
  /** What the model is told the tool does. */
  description: string;
  /** JSON Schema of the arguments (an object schema); the loop validates the model's arguments against it before `run`. */
  parameters: Record<string, unknown>;
  /** The turn pauses until the user approves or denies each call (a project can also ask this of any tool). */
  needsApproval?: boolean;
  /** Longest a call may take before the model is told it timed out (default: the deployment's). */
  timeoutMs?: number;
  /**
   * Runs one call with arguments that passed the schema. Returns any JSON
   * value (a string is given to the model as is). Throw ToolError for a
   * failure the model should read; anything else is logged and the model is
   * told the tool failed.
   */
  run(args: Record<string, unknown>, ctx: ToolRunContext): Promise<unknown>;
}

/** A module's tools: fixed (built-ins) or per caller (a project's MCP servers). */
export interface ToolSource {
  list(scope: ToolScope): Tool[] | Promise<Tool[]>;
  /**
   * Every tool it lists for a scope is offered there without the project
   * naming it in `tools` (an MCP server's allow-list has chosen them);
   * otherwise a tool is offered only where the project names it.
   */
  offersAll?: boolean;
}

/** A failure told to the model as `message` (and stored with the call): bad input, a page that cannot be fetched, a server that is down. */
export class ToolError extends Error {
  readonly code: string;
  constructor(message: string, code = 'tool_failed') {
    super(message);
    this.name = 'ToolError';
    this.code = code;
  }
}

/** A fixed set of tools, whatever the caller. */
export const fixedTools = (...tools: Tool[]): ToolSource => ({ list: () => tools });
