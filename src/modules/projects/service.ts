import { Conflict, NotFound } from '../../errors.ts';
import { inTransaction, type Db } from '../../platform/db/database.ts';
import type { JobQueue } from '../../platform/queue/queue.ts';
import { projectDeleted } from './deleted.ts';
import { createProjectsRepository, type ProjectRow, type ProjectWithPrompt, type PromptRow } from './repository.ts';
import type { ProjectLimits } from './settings.ts';

export interface ProjectSettings {
  description?: string | null;
  model?: string | null;
  fallbackModels?: string[];
  temperature?: number | null;
  maxTokens?: number | null;
  tools?: string[];
  toolApprovals?: string[];
  maxToolSteps?: number | null;
  sandboxTimeoutMs?: number | null;
  sandboxMemoryMb?: number | null;
}

/** What chat generation needs from a project, resolved in one read. */
export interface GenerationSettings {
  /** The active prompt's content; null when the project has none. */
  systemPrompt: string | null;
  /** `provider:model`; null means the server default. */
  model: string | null;
  fallbackModels: string[];
  temperature: number | null;
  maxTokens: number | null;
  tools: string[];
  toolApprovals: string[];
  maxToolSteps: number | null;
  sandboxTimeoutMs: number | null;
  sandboxMemoryMb: number | null;
}

export type PromptView = PromptRow & { active: boolean };

const DEFAULT_PROMPT_NAME = 'Default';

const iso = (d: Date) => d.toISOString();

export const toPublicPrompt = (p: PromptView) => ({
  id: p.id,
  projectId: p.projectId,
  name: p.name,
  content: p.content,
  active: p.active,
  createdAt: iso(p.createdAt),
  updatedAt: iso(p.updatedAt),
});

export const toPublicProject = ({ project: p, activePrompt }: ProjectWithPrompt) => ({
  id: p.id,
  name: p.name,
  description: p.description,
  model: p.model,
  fallbackModels: p.fallbackModels,
  temperature: p.temperature,
  maxTokens: p.maxTokens,
  tools: p.tools,
  toolApprovals: p.toolApprovals,
  maxToolSteps: p.maxToolSteps,
  sandboxTimeoutMs: p.sandboxTimeoutMs,
  sandboxMemoryMb: p.sandboxMemoryMb,
  activePromptId: p.activePromptId,
  activePrompt: activePrompt ? toPublicPrompt({ ...activePrompt, active: true }) : null,
  createdAt: iso(p.createdAt),
  updatedAt: iso(p.updatedAt),
});

/** Projects (agents) and their prompts. Every function takes the caller's id: another user's project is not found. */
/** `queue` takes `project.deleted` in the deletion's transaction; `limits` bounds how many projects one user holds, and prompts one project. */
export function createProjects(db: Db, deps: { queue: Pick<JobQueue, 'enqueue'>; limits: ProjectLimits }) {
  const repo = createProjectsRepository(db);

  async function get(userId: string, id: string): Promise<ProjectWithPrompt> {
    const found = await repo.get(userId, id);
    if (!found) throw NotFound('Project', 'project_not_found');
    return found;
  }

  async function lock(userId: string, id: string, tx: Db): Promise<ProjectRow> {
    const project = await repo.lock(userId, id, tx);
    if (!project) throw NotFound('Project', 'project_not_found');
    return project;
  }

  async function promptOf(projectId: string, promptId: string, tx?: Db): Promise<PromptRow> {
    const prompt = await repo.prompt(projectId, promptId, tx);
    if (!prompt) throw NotFound('Prompt', 'prompt_not_found');
    return prompt;
  }

  async function ensureNameFree(projectId: string, name: string, exceptId: string | undefined, tx: Db) {
    if (await repo.promptNameTaken(projectId, name, exceptId, tx)) throw Conflict(`This project already has a prompt named "${name}"`, 'prompt_name_taken');
  }

  return {
    get,

    /** Whether the user owns this project; for other modules that only hold a reference to one. */
    async exists(userId: string, id: string): Promise<boolean> {
      return (await repo.get(userId, id)) !== undefined;
    },

    list: (userId: string, page: { limit: number; cursor?: string }) => repo.list(userId, page),

    async create(userId: string, input: ProjectSettings & { name: string; systemPrompt?: string }): Promise<ProjectWithPrompt> {
      const { systemPrompt, ...fields } = input;
      const max = deps.limits.maxPerUser;
      const id = await inTransaction(db, async (tx) => {
        // Creations side by side take turns here, so each counts the projects the others made: none passes the cap.
        await repo.lockUser(userId, tx);
        if ((await repo.countOf(userId, tx)) >= max) throw Conflict(`At most ${max} projects per user: delete one first`, 'project_limit');
        const project = await repo.insert({ ...fields, userId }, tx);
        if (systemPrompt !== undefined) {
          const prompt = await repo.insertPrompt({ projectId: project.id, name: DEFAULT_PROMPT_NAME, content: systemPrompt }, tx);
          await repo.update(project.id, { activePromptId: prompt.id }, tx);
        }
        return project.id;
      });
      return get(userId, id);
    },

    /** `activePromptId` must name one of this project's prompts (or be null). */
    async update(userId: string, id: string, patch: ProjectSettings & { name?: string; activePromptId?: string | null }): Promise<ProjectWithPrompt> {
      await inTransaction(db, async (tx) => {
        await lock(userId, id, tx);
        if (patch.activePromptId) await promptOf(id, patch.activePromptId, tx);
        await repo.update(id, patch, tx);
      });
      return get(userId, id);
    },

    /** Its prompts go with it; its conversations stay, detached from it. */
    async delete(userId: string, id: string): Promise<void> {
      await inTransaction(db, async (tx) => {
        if (!(await repo.delete(userId, id, tx))) throw NotFound('Project', 'project_not_found');
        // Announced once committed, and always then: what other modules keep about the project (budgets) goes with it.
        await projectDeleted.announce(deps.queue, { userId, projectId: id }, tx);
      });
    },

    async listPrompts(userId: string, projectId: string, page: { limit: number; cursor?: string }): Promise<PromptView[]> {
      const { project } = await get(userId, projectId);
      const rows = await repo.prompts(projectId, page);
      return rows.map((p) => ({ ...p, active: p.id === project.activePromptId }));
    },

    async getPrompt(userId: string, projectId: string, promptId: string): Promise<PromptView> {
      const { project } = await get(userId, projectId);
      const prompt = await promptOf(projectId, promptId);
      return { ...prompt, active: prompt.id === project.activePromptId };
    },

    async createPrompt(userId: string, projectId: string, input: { name: string; content: string; activate?: boolean }): Promise<PromptView> {
      const max = deps.limits.maxPrompts;
      return inTransaction(db, async (tx) => {
        // The project's row lock makes additions to it take turns, so each counts the prompts the others added: none passes the cap.
        const project = await lock(userId, projectId, tx);
        if ((await repo.countPrompts(projectId, tx)) >= max) throw Conflict(`At most ${max} prompts per project: delete one first`, 'prompt_limit');
        await ensureNameFree(projectId, input.name, undefined, tx);
        const prompt = await repo.insertPrompt({ projectId, name: input.name, content: input.content }, tx);
        if (input.activate) await repo.update(projectId, { activePromptId: prompt.id }, tx);
        return { ...prompt, active: input.activate === true || project.activePromptId === prompt.id };
      });
    },

    async updatePrompt(userId: string, projectId: string, promptId: string, patch: { name?: string; content?: string }): Promise<PromptView> {
      return inTransaction(db, async (tx) => {
        const project = await lock(userId, projectId, tx);
        await promptOf(projectId, promptId, tx);
        if (patch.name !== undefined) await ensureNameFree(projectId, patch.name, promptId, tx);
        const prompt = await repo.updatePrompt(promptId, patch, tx);
        return { ...prompt, active: project.activePromptId === promptId };
      });
    },

    /** Deleting the active prompt leaves the project without a system prompt. */
    async deletePrompt(userId: string, projectId: string, promptId: string): Promise<void> {
      await inTransaction(db, async (tx) => {
        const project = await lock(userId, projectId, tx);
        await promptOf(projectId, promptId, tx);
        if (project.activePromptId === promptId) await repo.update(projectId, { activePromptId: null }, tx);
        await repo.deletePrompt(promptId, tx);
      });
    },

    async activatePrompt(userId: string, projectId: string, promptId: string): Promise<ProjectWithPrompt> {
      await inTransaction(db, async (tx) => {
        await lock(userId, projectId, tx);
        await promptOf(projectId, promptId, tx);
        await repo.update(projectId, { activePromptId: promptId }, tx);
      });
      return get(userId, projectId);
    },

    /** The project's generation settings, or undefined when the user has no such project. */
    async forGeneration(userId: string, projectId: string): Promise<GenerationSettings | undefined> {
      const found = await repo.get(userId, projectId);
      if (!found) return undefined;
      const { project: p, activePrompt } = found;
      return {
        systemPrompt: activePrompt?.content ?? null,
        model: p.model,
        fallbackModels: p.fallbackModels,
        temperature: p.temperature,
        maxTokens: p.maxTokens,
        tools: p.tools,
        toolApprovals: p.toolApprovals,
        maxToolSteps: p.maxToolSteps,
        sandboxTimeoutMs: p.sandboxTimeoutMs,
        sandboxMemoryMb: p.sandboxMemoryMb,
      };
    },
  };
}

export type Projects = ReturnType<typeof createProjects>;
