import { defineModule } from '../module.ts';
import { loadAssets } from './assets.ts';
import { consoleRoutes } from './routes.ts';
import { consoleEnv, consoleSettings, type ConsoleSettings } from './settings.ts';

declare module '../module.ts' {
  interface ModuleSettings {
    /** Whether the web console is served at `/`. */
    console: ConsoleSettings;
  }
}

/**
 * The web console: a Preact app served from `/` as native ES modules (no
 * build step), talking only to the public API and WebSocket with the cookie
 * session, like any other client. Off with CONSOLE_ENABLED=false (the health
 * module then answers `/` with a page naming the server).
 */
export const consoleModule = defineModule({
  name: 'console',
  config: { env: consoleEnv, read: consoleSettings },
  rootRoutes(app, { config }) {
    if (config.console.enabled) consoleRoutes(app, loadAssets());
  },
});
