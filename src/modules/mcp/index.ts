import { onReclaimed } from '../auth/index.ts';
import { defineModule } from '../module.ts';
import { mcpRoutes } from './routes.ts';
import { mcpDisabledTools, mcpServers } from './schema.ts';
import { createMcp, type Mcp } from './service.ts';
import { mcpEnv, mcpSettings, type McpSettings } from './settings.ts';

export type { Mcp } from './service.ts';

declare module '../module.ts' {
  interface ServiceMap {
    /** MCP servers of projects and users, their tools, and users' switch-offs. */
    mcp: Mcp;
  }
  interface ModuleSettings {
    /** Private addresses allowed, call and listing time limits, the listing cache, servers per owner. */
    mcp: McpSettings;
  }
}

/**
 * MCP: remote MCP servers (Streamable HTTP) as tool sources. A project's
 * servers are offered in its conversations, a user's own in all of theirs;
 * each server's allow-list picks its tools, and a user may switch any of them
 * off for themselves. URLs are checked against the private ranges at
 * registration and at every connection; headers (credentials) are encrypted.
 */
export const mcpModule = defineModule({
  name: 'mcp',
  tables: { mcpServers, mcpDisabledTools },
  config: { env: mcpEnv, read: mcpSettings },
  needs: ['projects'],
  provides: ['mcp'],
  services: ({ deps, config, services }) => ({ mcp: createMcp({ db: deps.db, cipher: deps.cipher, projects: services.projects, settings: config.mcp, logger: deps.logger }) }),
  routes: mcpRoutes,
  tools: ({ mcp }) => mcp.toolSource,
  subscriptions: ({ deps, services }) => [
    // A reset proved the address for the first time: servers registered before may be a stranger's, who would get the owner's tool calls.
    onReclaimed('mcp', deps.logger, 'MCP servers', async (userId, before) => {
      const serverIds = await services.mcp.deleteAllOf(userId, before);
      return serverIds.length ? { serverIds } : undefined;
    }),
  ],
});
