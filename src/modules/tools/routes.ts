import { z } from 'zod';
import { NotFound } from '../../errors.ts';
import { principal } from '../../http/guards.ts';
import { problemSchema } from '../../http/problem.ts';
import type { App } from '../../http/types.ts';
import type { RouteContext } from '../module.ts';

const toolsQuery = z.object({ projectId: z.uuid().optional().describe("One of your projects: its MCP servers' tools too, and which of all it offers") });

const toolSchema = z
  .object({
    name: z.string(),
    description: z.string(),
    parameters: z.record(z.string(), z.unknown()).describe('JSON Schema of the arguments'),
    needsApproval: z.boolean().describe('Every call waits for approval, whatever the project says'),
    offered: z.boolean().describe("With projectId: the project's turns offer it (named in its `tools`, or allowed on one of its MCP servers)"),
  })
  .meta({ id: 'Tool' });

/** The tools a caller may give their projects. API keys need the `chat` scope. */
export function toolsRoutes(app: App, { services, guards }: RouteContext<'toolbox' | 'projects'>) {
  const { toolbox, projects } = services;
  app.get('/tools', {
    schema: {
      tags: ['projects'],
      summary: 'List the tools a project may offer',
      description: "Every built-in and deployment tool, and the tools of your MCP servers (and, with `projectId`, the project's). A project offers a tool when its `tools` names it; an MCP server's allowed tools are offered by themselves.",
      querystring: toolsQuery,
      response: { 200: z.object({ data: z.array(toolSchema) }), 400: problemSchema, 401: problemSchema, 403: problemSchema, 404: problemSchema },
    },
    onRequest: guards.user({ scope: 'chat' }),
    handler: async (request) => {
      const p = principal(request);
      const { projectId } = request.query;
      const settings = projectId ? await projects.forGeneration(p.userId, projectId) : undefined;
      if (projectId && !settings) throw NotFound('Project', 'project_not_found');
      const scope = { userId: p.userId, projectId: projectId ?? null, conversationId: null, apiKeyId: p.apiKeyId ?? null };
      const [all, offered] = await Promise.all([toolbox.all(scope), projectId ? toolbox.offered(scope, settings!.tools) : []]);
      const on = new Set(offered.map((t) => t.name));
      return { data: all.map((t) => ({ name: t.name, description: t.description, parameters: t.parameters, needsApproval: !!t.needsApproval, offered: on.has(t.name) })) };
    },
  });
}
