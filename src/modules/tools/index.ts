import { defineModule } from '../module.ts';
import { currentTimeTool } from './builtin/current-time.ts';
import { fetchUrlTool } from './builtin/fetch-url.ts';
import { createWebPages, type WebPages } from './builtin/web-pages.ts';
import { toolsEnv, toolsSettings, type ToolsSettings } from './settings.ts';
import { toolsRoutes } from './routes.ts';
import { fixedTools } from './tool.ts';
import { createToolbox, type Toolbox } from './toolbox.ts';

export { createToolbox, type Toolbox, type ToolOutcome } from './toolbox.ts';
export type { ToolsSettings } from './settings.ts';
export { fixedTools, ToolError, type Tool, type ToolLimits, type ToolRunContext, type ToolScope, type ToolSource } from './tool.ts';
export type { Page, WebPages } from './builtin/web-pages.ts';

declare module '../module.ts' {
  interface ServiceMap {
    /** Every module's tools, offered per turn and run under the loop's limits. */
    toolbox: Toolbox;
    /** Public web pages read as text, every address checked (what fetch_url reads with). */
    webPages: WebPages;
  }
  interface ModuleSettings {
    /** Time and size limits of a tool call, and the steps a turn may take; what fetch_url may read. */
    tools: ToolsSettings;
  }
}

/**
 * Tools: what the model may call in chat. The contract every module's tools
 * follow (tool.ts), the toolbox that offers and runs them (toolbox.ts), and
 * the built-in tools that belong to no other module: `current_time` (in the
 * user's zone, hence users) and `fetch_url`. Other modules contribute their
 * own the same way (sandbox: run_javascript, knowledge: search_knowledge).
 */
export const toolsModule = defineModule({
  name: 'tools',
  config: { env: toolsEnv, read: toolsSettings },
  needs: ['users'],
  uses: ['projects'],
  provides: ['toolbox', 'webPages'],
  services: ({ deps, config, toolSources }) => ({
    toolbox: createToolbox({ sources: toolSources, settings: config.tools, logger: deps.logger }),
    webPages: createWebPages(config.tools.fetchUrl),
  }),
  routes: toolsRoutes,
  stop: ({ webPages }) => webPages.close(),
  tools: ({ users, webPages }) => fixedTools(currentTimeTool({ users }), fetchUrlTool({ pages: webPages })),
});
