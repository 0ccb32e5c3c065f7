import { index, integer, pgTable, real, text, uniqueIndex, uuid } from 'drizzle-orm/pg-core';
import { createdAt, id, time } from '../../platform/db/columns.ts';
import { users } from '../users/index.ts';

/** An agent: its prompts, model, fallback chain and generation settings. */
export const projects = pgTable(
  'projects',
  {
    id: id(),
    userId: uuid('user_id').notNull().references(() => users.id, { onDelete: 'cascade' }),
    name: text('name').notNull(),
    description: text('description'),
    /** The prompt used as the system message; one of this project's prompts. */
    activePromptId: uuid('active_prompt_id'),
    /** `provider:model`, e.g. `openai:gpt-4o-mini`; null means the server default. */
    model: text('model'),
    /** Tried in order after `model` when it fails retryably. */
    fallbackModels: text('fallback_models').array().notNull().default([]),
    temperature: real('temperature'),
    maxTokens: integer('max_tokens'),
    tools: text('tools').array().notNull().default([]),
    /** Tools whose every call waits for the user's approval, beyond those that always do. */
    toolApprovals: text('tool_approvals').array().notNull().default([]),
    /** Model calls a turn may make with tools; null for the deployment's default (capped by TOOLS_MAX_STEPS). */
    maxToolSteps: integer('max_tool_steps'),
    /** CPU time and heap of a `run_javascript` call; null for the sandbox's defaults (capped by its SANDBOX_MAX_*). */
    sandboxTimeoutMs: integer('sandbox_timeout_ms'),
    sandboxMemoryMb: integer('sandbox_memory_mb'),
    createdAt: createdAt(),
    updatedAt: time('updated_at').notNull().defaultNow(),
  },
  (t) => [index('projects_user_idx').on(t.userId, t.id)],
);

export const projectPrompts = pgTable(
  'project_prompts',
  {
    id: id(),
    projectId: uuid('project_id').notNull().references(() => projects.id, { onDelete: 'cascade' }),
    name: text('name').notNull(),
    content: text('content').notNull(),
    createdAt: createdAt(),
    updatedAt: time('updated_at').notNull().defaultNow(),
  },
  (t) => [uniqueIndex('project_prompts_name_key').on(t.projectId, t.name)],
);
