import { and, count, desc, eq, lt, ne, type SQL } from 'drizzle-orm';
import { lockWithinTransaction, type Db } from '../../platform/db/database.ts';
import { projectPrompts, projects } from './schema.ts';

export type ProjectRow = typeof projects.$inferSelect;
export type PromptRow = typeof projectPrompts.$inferSelect;
export type ProjectWithPrompt = { project: ProjectRow; activePrompt: PromptRow | null };

const withActivePrompt = { project: projects, activePrompt: projectPrompts };

export function createProjectsRepository(db: Db) {
  // Every read of a project names its owner, so another user's id is simply not found.
  const owned = (userId: string, id: string) => and(eq(projects.id, id), eq(projects.userId, userId));

  return {
    async insert(values: typeof projects.$inferInsert, tx: Db = db): Promise<ProjectRow> {
      const [row] = await tx.insert(projects).values(values).returning();
      return row!;
    },

    /**
     * Inside a transaction: the user's creations take turns from here until it ends (an advisory lock), so
     * the count read next cannot change before the new row is recorded.
     */
    async lockUser(userId: string, tx: Db): Promise<void> {
      await lockWithinTransaction(tx, `projects:${userId}`);
    },

    async countOf(userId: string, tx: Db = db): Promise<number> {
      const [row] = await tx.select({ n: count() }).from(projects).where(eq(projects.userId, userId));
      return Number(row?.n ?? 0);
    },

    async get(userId: string, id: string): Promise<ProjectWithPrompt | undefined> {
      const [row] = await db
        .select(withActivePrompt)
        .from(projects)
        .leftJoin(projectPrompts, eq(projectPrompts.id, projects.activePromptId))
        .where(owned(userId, id));
      return row;
    },

    /** Newest first. */
    list(userId: string, opts: { limit: number; cursor?: string }): Promise<ProjectWithPrompt[]> {
      const where: SQL[] = [eq(projects.userId, userId)];
      if (opts.cursor) where.push(lt(projects.id, opts.cursor));
      return db
        .select(withActivePrompt)
        .from(projects)
        .leftJoin(projectPrompts, eq(projectPrompts.id, projects.activePromptId))
        .where(and(...where))
        .orderBy(desc(projects.id))
        .limit(opts.limit);
    },

    /** Reads and row-locks the project: prompt changes and activation of one project take turns. */
    async lock(userId: string, id: string, tx: Db): Promise<ProjectRow | undefined> {
      const [row] = await tx.select().from(projects).where(owned(userId, id)).for('update');
      return row;
    },

    async update(id: string, values: Partial<typeof projects.$inferInsert>, tx: Db = db): Promise<ProjectRow> {
      const [row] = await tx.update(projects).set({ ...values, updatedAt: new Date() }).where(eq(projects.id, id)).returning();
      return row!;
    },

    async delete(userId: string, id: string, tx: Db = db): Promise<boolean> {
      const rows = await tx.delete(projects).where(owned(userId, id)).returning({ id: projects.id });
      return rows.length > 0;
    },

    async prompt(projectId: string, promptId: string, tx: Db = db): Promise<PromptRow | undefined> {
      const [row] = await tx.select().from(projectPrompts).where(and(eq(projectPrompts.id, promptId), eq(projectPrompts.projectId, projectId)));
      return row;
    },

    /** Whether another prompt of the project already has this name. */
    async promptNameTaken(projectId: string, name: string, exceptId: string | undefined, tx: Db): Promise<boolean> {
      const where = [eq(projectPrompts.projectId, projectId), eq(projectPrompts.name, name)];
      if (exceptId) where.push(ne(projectPrompts.id, exceptId));
      const rows = await tx.select({ id: projectPrompts.id }).from(projectPrompts).where(and(...where)).limit(1);
      return rows.length > 0;
    },

    /** Newest first. */
    prompts(projectId: string, opts: { limit: number; cursor?: string }): Promise<PromptRow[]> {
      const where: SQL[] = [eq(projectPrompts.projectId, projectId)];
      if (opts.cursor) where.push(lt(projectPrompts.id, opts.cursor));
      return db.select().from(projectPrompts).where(and(...where)).orderBy(desc(projectPrompts.id)).limit(opts.limit);
    },

    /** Every prompt the project holds, active or not. */
    async countPrompts(projectId: string, tx: Db = db): Promise<number> {
      const [row] = await tx.select({ n: count() }).from(projectPrompts).where(eq(projectPrompts.projectId, projectId));
      return Number(row?.n ?? 0);
    },

    async insertPrompt(values: typeof projectPrompts.$inferInsert, tx: Db): Promise<PromptRow> {
      const [row] = await tx.insert(projectPrompts).values(values).returning();
      return row!;
    },

    async updatePrompt(id: string, values: { name?: string; content?: string }, tx: Db): Promise<PromptRow> {
      const [row] = await tx.update(projectPrompts).set({ ...values, updatedAt: new Date() }).where(eq(projectPrompts.id, id)).returning();
      return row!;
    },

    async deletePrompt(id: string, tx: Db): Promise<void> {
      await tx.delete(projectPrompts).where(eq(projectPrompts.id, id));
    },
  };
}

export type ProjectsRepository = ReturnType<typeof createProjectsRepository>;
