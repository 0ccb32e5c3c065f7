import { defineModule } from '../module.ts';
import { exportRoutes } from './routes.ts';
import { createExporter, type Exporter } from './service.ts';

export { inBatches, segment, type ExportArchive, type ExportSource } from './source.ts';
export type { Exporter } from './service.ts';

declare module '../module.ts' {
  interface ServiceMap {
    /** A user's data from every module, as one zip. */
    exporter: Exporter;
  }
}

/**
 * Export: everything a user has in Parley, as one zip they can keep or take
 * elsewhere. Each module says what it holds through its `exports` field
 * (module.ts); this module only assembles the archive and serves it.
 */
export const exportModule = defineModule({
  name: 'export',
  provides: ['exporter'],
  services: ({ deps, exportSources }) => ({ exporter: createExporter({ sources: exportSources, logger: deps.logger }) }),
  routes: exportRoutes,
});
