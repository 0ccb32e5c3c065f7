import { and, asc, count, desc, eq, gt, isNull, lt, or, sql, type SQL } from 'drizzle-orm';
import { lockWithinTransaction, type Db } from '../../platform/db/database.ts';
import { mcpDisabledTools, mcpServers, type McpServerRow } from './schema.ts';

/** Whose servers: a project's, or a user's own (no project). */
export type McpOwner = { projectId: string } | { userId: string };

const ownedBy = (owner: McpOwner): SQL => ('projectId' in owner ? eq(mcpServers.projectId, owner.projectId) : and(eq(mcpServers.userId, owner.userId), isNull(mcpServers.projectId))!);

/** Queries of the MCP tables, nothing else. */
export function createMcpRepository(db: Db) {
  return {
    async create(values: typeof mcpServers.$inferInsert): Promise<McpServerRow> {
      const [row] = await db.insert(mcpServers).values(values).returning();
      return row!;
    },
    /**
     * Inside a transaction: the owner's registrations take turns from here until it ends (an advisory lock), so
     * the count read next cannot change before the new row is recorded.
     */
    async lockOwner(owner: McpOwner): Promise<void> {
      const key = 'projectId' in owner ? `mcp:project:${owner.projectId}` : `mcp:user:${owner.userId}`;
      await lockWithinTransaction(db, key);
    },
    async get(owner: McpOwner, id: string): Promise<McpServerRow | undefined> {
      const [row] = await db.select().from(mcpServers).where(and(ownedBy(owner), eq(mcpServers.id, id)));
      return row;
    },
    list(owner: McpOwner, opts: { limit: number; cursor?: string }): Promise<McpServerRow[]> {
      const where = [ownedBy(owner)];
      if (opts.cursor) where.push(lt(mcpServers.id, opts.cursor));
      return db.select().from(mcpServers).where(and(...where)).orderBy(desc(mcpServers.id)).limit(opts.limit);
    },
    async count(owner: McpOwner): Promise<number> {
      const [row] = await db.select({ n: count() }).from(mcpServers).where(ownedBy(owner));
      return Number(row?.n ?? 0);
    },
    async nameTaken(owner: McpOwner, name: string, exceptId?: string): Promise<boolean> {
      const rows = await db.select({ id: mcpServers.id }).from(mcpServers).where(and(ownedBy(owner), eq(mcpServers.name, name)));
      return rows.some((r) => r.id !== exceptId);
    },
    async update(id: string, patch: Partial<Omit<McpServerRow, 'id' | 'userId' | 'projectId' | 'createdAt'>>): Promise<McpServerRow | undefined> {
      const [row] = await db.update(mcpServers).set({ ...patch, updatedAt: new Date() }).where(eq(mcpServers.id, id)).returning();
      return row;
    },
    async delete(owner: McpOwner, id: string): Promise<boolean> {
      return (await db.delete(mcpServers).where(and(ownedBy(owner), eq(mcpServers.id, id))).returning({ id: mcpServers.id })).length > 0;
    },
    /** Every server the user registered before `before`, their own and their projects'; the ids of those deleted. */
    async deleteAllOf(userId: string, before: Date): Promise<string[]> {
      const rows = await db.delete(mcpServers).where(and(eq(mcpServers.userId, userId), lt(mcpServers.createdAt, before))).returning({ id: mcpServers.id });
      return rows.map((r) => r.id);
    },
    /** The enabled servers a turn offers: the project's first, then the user's own. */
    enabledFor(userId: string, projectId: string | null): Promise<McpServerRow[]> {
      const own = and(eq(mcpServers.userId, userId), isNull(mcpServers.projectId));
      const scope = projectId ? or(eq(mcpServers.projectId, projectId), own) : own;
      return db.select().from(mcpServers).where(and(eq(mcpServers.enabled, true), scope)).orderBy(asc(mcpServers.projectId), asc(mcpServers.id));
    },

    async disabledTools(userId: string, opts: { limit: number; after?: string } = { limit: 10_000 }): Promise<Array<{ toolName: string; createdAt: Date }>> {
      const where = [eq(mcpDisabledTools.userId, userId)];
      if (opts.after) where.push(gt(mcpDisabledTools.toolName, opts.after));
      return db.select({ toolName: mcpDisabledTools.toolName, createdAt: mcpDisabledTools.createdAt }).from(mcpDisabledTools).where(and(...where)).orderBy(asc(mcpDisabledTools.toolName)).limit(opts.limit);
    },
    async countDisabledTools(userId: string): Promise<number> {
      const [row] = await db.select({ n: count() }).from(mcpDisabledTools).where(eq(mcpDisabledTools.userId, userId));
      return Number(row?.n ?? 0);
    },
    async disableTool(userId: string, toolName: string): Promise<void> {
      await db.insert(mcpDisabledTools).values({ userId, toolName }).onConflictDoNothing();
    },
    async enableTool(userId: string, toolName: string): Promise<boolean> {
      return (await db.delete(mcpDisabledTools).where(and(eq(mcpDisabledTools.userId, userId), eq(mcpDisabledTools.toolName, toolName))).returning({ n: mcpDisabledTools.toolName })).length > 0;
    },
  };
}
