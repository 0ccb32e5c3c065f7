import { z } from 'zod';
import { ValidationError } from '../../errors.ts';
import { principal } from '../../http/guards.ts';
import { page, pageQuery, toPage } from '../../http/pagination.ts';
import { problemSchema } from '../../http/problem.ts';
import type { App } from '../../http/types.ts';
import type { RouteContext } from '../module.ts';
import {
  createProjectBody,
  createPromptBody,
  projectParams,
  projectSchema,
  projectsQuery,
  promptParams,
  promptSchema,
  updateProjectBody,
  updatePromptBody,
} from './contracts.ts';
import { toPublicProject, toPublicPrompt } from './service.ts';

const problems = { 400: problemSchema, 401: problemSchema, 403: problemSchema, 404: problemSchema };
const tags = ['projects'];

/** Projects (agents) and their prompts. API keys need the `chat` scope. */
export function projectsRoutes(app: App, { services, guards }: RouteContext<'projects' | 'toolbox'>) {
  const { projects, toolbox } = services;
  const onRequest = guards.user({ scope: 'chat' });
  const me = (request: Parameters<typeof principal>[0]) => principal(request).userId;

  /**
   * 400 `unknown_tool` for a tool name that no source lists for this user (a typo was saved and offered
   * nothing, silently). Names the project already has pass: a tool the deployment has since removed does
   * not block other changes.
   */
  async function checkTools(request: Parameters<typeof principal>[0], body: { tools?: string[]; toolApprovals?: string[] }, project?: { id: string; tools: string[]; toolApprovals: string[] }) {
    const had = new Set([...(project?.tools ?? []), ...(project?.toolApprovals ?? [])]);
    const names = [...new Set([...(body.tools ?? []), ...(body.toolApprovals ?? [])])].filter((name) => !had.has(name));
    if (!names.length) return;
    const p = principal(request);
    const listed = await toolbox.all({ userId: p.userId, projectId: project?.id ?? null, conversationId: null, apiKeyId: p.apiKeyId ?? null });
    const known = new Set(listed.map((t) => t.name));
    const unknown = names.filter((name) => !known.has(name));
    if (unknown.length) throw ValidationError(`No tool is named ${unknown.join(', ')}: GET /v1/tools lists the tools a project may offer`, 'unknown_tool', { tools: unknown });
  }

  app.post('/projects', {
    schema: {
      tags,
      summary: 'Create a project',
      description: 'A user with `PROJECTS_MAX_PER_USER` projects already (default 1000) is 409 `project_limit`.',
      body: createProjectBody,
      response: { 201: projectSchema, 409: problemSchema, ...problems },
    },
    onRequest,
    handler: async (request, reply) => {
      await checkTools(request, request.body);
      return reply.status(201).send(toPublicProject(await projects.create(me(request), request.body)));
    },
  });

  app.get('/projects', {
    schema: { tags, summary: 'List your projects, newest first', querystring: projectsQuery, response: { 200: page(projectSchema), ...problems } },
    onRequest,
    handler: async (request) => {
      const { limit, cursor } = request.query;
      const rows = await projects.list(me(request), { limit: limit + 1, cursor });
      return toPage(rows.map((r) => ({ ...r, id: r.project.id })), limit, toPublicProject);
    },
  });

  app.get('/projects/:id', {
    schema: { tags, summary: 'One project, with its active prompt', params: projectParams, response: { 200: projectSchema, ...problems } },
    onRequest,
    handler: async (request) => toPublicProject(await projects.get(me(request), request.params.id)),
  });

  app.patch('/projects/:id', {
    schema: {
      tags,
      summary: 'Change a project',
      description: 'Send only what changes. `activePromptId` must be one of this project\'s prompts.',
      params: projectParams,
      body: updateProjectBody,
      response: { 200: projectSchema, ...problems },
    },
    onRequest,
    handler: async (request) => {
      if (request.body.tools || request.body.toolApprovals) await checkTools(request, request.body, (await projects.get(me(request), request.params.id)).project);
      return toPublicProject(await projects.update(me(request), request.params.id, request.body));
    },
  });

  app.delete('/projects/:id', {
    schema: {
      tags,
      summary: 'Delete a project and its prompts',
      description: 'Its conversations are kept, no longer attached to a project.',
      params: projectParams,
      response: { 204: z.null(), ...problems },
    },
    onRequest,
    handler: async (request, reply) => {
      await projects.delete(me(request), request.params.id);
      return reply.status(204).send(null);
    },
  });

  app.post('/projects/:id/prompts', {
    schema: {
      tags,
      summary: 'Add a prompt to a project',
      description: 'A project with `PROJECTS_MAX_PROMPTS` prompts already (default 1000) is 409 `prompt_limit`.',
      params: projectParams,
      body: createPromptBody,
      response: { 201: promptSchema, 409: problemSchema, ...problems },
    },
    onRequest,
    handler: async (request, reply) => reply.status(201).send(toPublicPrompt(await projects.createPrompt(me(request), request.params.id, request.body))),
  });

  app.get('/projects/:id/prompts', {
    schema: { tags, summary: "A project's prompts, newest first", params: projectParams, querystring: pageQuery, response: { 200: page(promptSchema), ...problems } },
    onRequest,
    handler: async (request) => {
      const { limit, cursor } = request.query;
      return toPage(await projects.listPrompts(me(request), request.params.id, { limit: limit + 1, cursor }), limit, toPublicPrompt);
    },
  });

  app.get('/projects/:id/prompts/:promptId', {
    schema: { tags, summary: 'One prompt', params: promptParams, response: { 200: promptSchema, ...problems } },
    onRequest,
    handler: async (request) => toPublicPrompt(await projects.getPrompt(me(request), request.params.id, request.params.promptId)),
  });

  app.patch('/projects/:id/prompts/:promptId', {
    schema: { tags, summary: 'Rename or rewrite a prompt', params: promptParams, body: updatePromptBody, response: { 200: promptSchema, 409: problemSchema, ...problems } },
    onRequest,
    handler: async (request) => {
      const { id, promptId } = request.params;
      return toPublicPrompt(await projects.updatePrompt(me(request), id, promptId, request.body));
    },
  });

  app.delete('/projects/:id/prompts/:promptId', {
    schema: {
      tags,
      summary: 'Delete a prompt',
      description: 'Deleting the active prompt leaves the project without a system prompt.',
      params: promptParams,
      response: { 204: z.null(), ...problems },
    },
    onRequest,
    handler: async (request, reply) => {
      await projects.deletePrompt(me(request), request.params.id, request.params.promptId);
      return reply.status(204).send(null);
    },
  });

  app.post('/projects/:id/prompts/:promptId/activate', {
    schema: { tags, summary: 'Make a prompt the project\'s system prompt', params: promptParams, response: { 200: projectSchema, ...problems } },
    onRequest,
    handler: async (request) => toPublicProject(await projects.activatePrompt(me(request), request.params.id, request.params.promptId)),
  });
}
