import { defineModule } from '../module.ts';
import { projectsFootprint } from './footprint.ts';
import { projectsRoutes } from './routes.ts';
import { projectPrompts, projects } from './schema.ts';
import { createProjects, type Projects } from './service.ts';
import { projectLimits, projectsEnv, type ProjectLimits } from './settings.ts';
import { projectsExport } from './export.ts';
import { projectDeleted } from './deleted.ts';

export type { GenerationSettings, Projects, ProjectSettings } from './service.ts';
export { projects } from './schema.ts';

declare module '../../platform/bus/events.ts' {
  interface DomainEvents {
    /**
     * `userId` deleted the project `projectId`. Published once the deletion is committed (queued in its
     * transaction), maybe more than once: handlers let go of what they kept about the project idempotently.
     * Projects that go with their account are not told one by one: each module's part of the account's
     * erasure takes what it kept about them.
     */
    'project.deleted': { userId: string; projectId: string };
  }
}

declare module '../module.ts' {
  interface ServiceMap {
    projects: Projects;
  }
  interface ModuleSettings {
    /** How many projects one user may hold, and prompts one project. */
    projects: ProjectLimits;
  }
}

/** Projects (agents): a model, fallbacks, parameters and versioned system prompts that a conversation answers with. */
export const projectsModule = defineModule({
  name: 'projects',
  exports: ({ deps }) => projectsExport(deps.db),
  tables: { projects, projectPrompts },
  config: { env: projectsEnv, read: projectLimits },
  provides: ['projects'],
  // Its routes check the tool names a project is given against what the toolbox lists (tools is built after it).
  uses: ['toolbox'],
  services: ({ deps, config }) => ({ projects: createProjects(deps.db, { queue: deps.queue, limits: config.projects }) }),
  routes: projectsRoutes,
  jobs: ({ deps }) => [projectDeleted.job(deps.bus)],
  footprint: projectsFootprint,
});
