import { sql } from 'drizzle-orm';
import type { FootprintSource } from '../usage/index.ts';
import { projectPrompts, projects } from './schema.ts';

/** What projects store, for the footprint report: UTF-8 bytes of names, descriptions and prompt texts. */
export const projectsFootprint: FootprintSource[] = [
  {
    name: 'projects',
    from: sql`${projects}`,
    userId: projects.userId,
    bytes: sql`octet_length(${projects.name}) + octet_length(coalesce(${projects.description}, ''))`,
  },
  {
    name: 'prompts',
    from: sql`${projectPrompts} join ${projects} on ${projects.id} = ${projectPrompts.projectId}`,
    userId: projects.userId,
    bytes: sql`octet_length(${projectPrompts.name}) + octet_length(${projectPrompts.content})`,
  },
];
