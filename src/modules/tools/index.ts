import { defineModule } from '../module.ts';
import { toolsEnv, toolsSettings, type ToolsSettings } from './settings.ts';
import { createToolbox, type Toolbox } from './toolbox.ts';

export { createToolbox, type Toolbox, type ToolOutcome } from './toolbox.ts';
export { fixedTools, ToolError, type Tool, type ToolLimits, type ToolRunContext, type ToolScope, type ToolSource } from './tool.ts';

declare module '../module.ts' {
  interface ServiceMap {
    /** Every module's tools, offered per turn and run under the loop's limits. */
    toolbox: Toolbox;
  }
  interface ModuleSettings {
    /** Time and size limits of a tool call, and the steps a turn may take. */
    tools: ToolsSettings;
  }
}

/**
 * Tools: what the model may call in chat. The contract every module's tools
 * follow (tool.ts), the toolbox that offers and runs them (toolbox.ts), and
 * the built-in tools that belong to no other module.
 */
export const toolsModule = defineModule({
  name: 'tools',
  config: { env: toolsEnv, read: toolsSettings },
  provides: ['toolbox'],
  services: ({ deps, config, toolSources }) => ({ toolbox: createToolbox({ sources: toolSources, settings: config.tools, logger: deps.logger }) }),
});
