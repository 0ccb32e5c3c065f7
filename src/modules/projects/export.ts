import { asc, eq, inArray } from 'drizzle-orm';
import type { Db } from '../../platform/db/database.ts';
import type { ExportSource } from '../export/index.ts';
import { projectPrompts, projects } from './schema.ts';

/** The user's projects with all their prompts. */
export const projectsExport = (db: Db): ExportSource => ({
  name: 'projects',
  async write(userId, archive) {
    const list = await db.select().from(projects).where(eq(projects.userId, userId)).orderBy(asc(projects.createdAt), asc(projects.id));
    const owned = db.select({ id: projects.id }).from(projects).where(eq(projects.userId, userId));
    const prompts = list.length ? await db.select().from(projectPrompts).where(inArray(projectPrompts.projectId, owned)).orderBy(asc(projectPrompts.createdAt)) : [];
    const promptsOf = Map.groupBy(prompts, (x) => x.projectId);
    archive.json(
      'projects.json',
      list.map((p) => ({ ...p, prompts: (promptsOf.get(p.id) ?? []).map(({ projectId: _p, ...x }) => x) })),
    );
  },
});
