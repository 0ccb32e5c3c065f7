import { defineModule } from '../module.ts';
import { projectsFootprint } from './footprint.ts';
import { projectsRoutes } from './routes.ts';
import { projectPrompts, projects } from './schema.ts';
import { createProjects, type Projects } from './service.ts';
import { projectsExport } from './export.ts';

export type { GenerationSettings, Projects, ProjectSettings } from './service.ts';
export { projects } from './schema.ts';

declare module '../module.ts' {
  interface ServiceMap {
    projects: Projects;
  }
}

/** Projects (agents): a model, fallbacks, parameters and versioned system prompts that a conversation answers with. */
export const projectsModule = defineModule({
  name: 'projects',
  exports: ({ deps }) => projectsExport(deps.db),
  tables: { projects, projectPrompts },
  provides: ['projects'],
  // Its routes check the tool names a project is given against what the toolbox lists (tools is built after it).
  uses: ['toolbox'],
  services: ({ deps }) => ({ projects: createProjects(deps.db) }),
  routes: projectsRoutes,
  footprint: projectsFootprint,
});
