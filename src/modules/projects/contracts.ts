import { z } from 'zod';
import { nameText } from '../../http/names.ts';
import { pageQuery } from '../../http/pagination.ts';
import { modelId } from '../ai/index.ts';

export const PROMPT_MAX_CHARS = 100_000;


/**
 * Stored in a `real` (float4) column: a nonzero value below float4's smallest
 * normal, 2^-126, underflows there (PostgreSQL refuses it). Refused here with
 * the bound named, rather than silently stored as 0 or a denormal.
 */
const FLOAT4_MIN_NORMAL = 2 ** -126;
const float4 = z.number().refine((v) => v === 0 || Math.abs(v) >= FLOAT4_MIN_NORMAL, `must be 0 or at least ${FLOAT4_MIN_NORMAL} (a 32-bit float)`);

const toolName = z.string().regex(/^[a-zA-Z0-9_-]{1,64}$/, 'letters, digits, _ and -, at most 64');
const unique = <T>(xs: T[]) => [...new Set(xs)];

const settings = {
  description: z.string().trim().max(2000).nullable(),
  model: modelId.nullable().describe("null for each user's `defaultModel` preference, then the server default"),
  fallbackModels: z.array(modelId).max(10).transform(unique).describe('Tried in order when `model` fails retryably'),
  temperature: float4.min(0).max(2).nullable(),
  maxTokens: z.number().int().min(1).max(1_000_000).nullable(),
  tools: z.array(toolName).max(64).transform(unique).describe('Names of the tools the model may call (GET /v1/tools lists them); MCP servers add their allowed tools by themselves'),
  toolApprovals: z.array(toolName).max(64).transform(unique).describe("Tools whose every call waits for the user's approval (some tools always do)"),
  maxToolSteps: z.number().int().min(1).max(100).nullable().describe('Model calls one turn may make while using tools; null for the deployment default (capped by TOOLS_MAX_STEPS)'),
  sandboxTimeoutMs: z.number().int().min(1).max(600_000).nullable().describe('CPU time of a run_javascript call; null for the sandbox default (capped by SANDBOX_MAX_CPU_MS)'),
  sandboxMemoryMb: z.number().int().min(1).max(4096).nullable().describe('Heap of a run_javascript call; null for the sandbox default (capped by SANDBOX_MAX_MEMORY_MB)'),
};

const projectName = nameText(100);
const promptName = nameText(100);
const promptContent = z.string().min(1).max(PROMPT_MAX_CHARS);

export const createProjectBody = z
  .object({
    name: projectName,
    ...z.object(settings).partial().shape,
    systemPrompt: promptContent.optional().describe('Creates a prompt named "Default" and makes it the active one'),
  })
  .strict();

export const updateProjectBody = z
  .object({
    name: projectName,
    ...settings,
    activePromptId: z.uuid().nullable().describe("One of this project's prompts, or null for no system prompt"),
  })
  .partial()
  .strict();

export const createPromptBody = z
  .object({ name: promptName, content: promptContent, activate: z.boolean().default(false).describe('Make it the active prompt') })
  .strict();

export const updatePromptBody = z.object({ name: promptName, content: promptContent }).partial().strict();

export const projectParams = z.object({ id: z.uuid() });
export const promptParams = z.object({ id: z.uuid(), promptId: z.uuid() });
export const projectsQuery = pageQuery;

export const promptSchema = z
  .object({
    id: z.uuid(),
    projectId: z.uuid(),
    name: z.string(),
    content: z.string(),
    active: z.boolean(),
    createdAt: z.iso.datetime(),
    updatedAt: z.iso.datetime(),
  })
  .meta({ id: 'ProjectPrompt' });

export const projectSchema = z
  .object({
    id: z.uuid(),
    name: z.string(),
    description: z.string().nullable(),
    model: z.string().nullable(),
    fallbackModels: z.array(z.string()),
    temperature: z.number().nullable(),
    maxTokens: z.number().int().nullable(),
    tools: z.array(z.string()),
    toolApprovals: z.array(z.string()),
    maxToolSteps: z.number().int().nullable(),
    sandboxTimeoutMs: z.number().int().nullable(),
    sandboxMemoryMb: z.number().int().nullable(),
    activePromptId: z.uuid().nullable(),
    activePrompt: promptSchema.nullable(),
    createdAt: z.iso.datetime(),
    updatedAt: z.iso.datetime(),
  })
  .meta({ id: 'Project' });
