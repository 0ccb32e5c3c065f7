import { defineModule } from '../module.ts';
import { fixedTools } from '../tools/index.ts';
import { sandboxRoutes } from './routes.ts';
import { createSandbox, type Sandbox } from './service.ts';
import { sandboxEnv, sandboxSettings, type SandboxSettings } from './settings.ts';
import { runJavascriptTool } from './tool.ts';

export type { Sandbox, RunInput, RunResult } from './service.ts';

declare module '../module.ts' {
  interface ServiceMap {
    /** JavaScript runs in isolated-vm isolates, in a pool of worker processes. */
    sandbox: Sandbox;
  }
  interface ModuleSettings {
    /** Pool size and queue, memory and CPU defaults and caps, script, output and result sizes. */
    sandbox: SandboxSettings;
  }
}

/**
 * Sandbox: JavaScript run in isolated-vm isolates (a fresh one per run, 16 MB
 * and 500 ms of CPU by default) inside a supervised pool of worker processes
 * whose environment holds no secret; a crashed or silent worker is replaced
 * and its run fails cleanly. Runs are queued, bounded and metered.
 */
export const sandboxModule = defineModule({
  name: 'sandbox',
  config: { env: sandboxEnv, read: sandboxSettings },
  needs: ['usage'],
  provides: ['sandbox'],
  services: ({ deps, config, services }) => ({
    sandbox: createSandbox({ settings: config.sandbox, metering: config.usage.enabled ? services.usage.metering : undefined, logger: deps.logger }),
  }),
  // After the HTTP server has drained: no run is in flight.
  stop: ({ sandbox }) => sandbox.close(),
  routes: sandboxRoutes,
  // What a project enables as `run_javascript`: the same runs, metered to the turn's caller.
  tools: ({ sandbox }) => fixedTools(runJavascriptTool({ sandbox })),
});
