import type { FastifyRequest } from 'fastify';
import { z } from 'zod';
import { principal } from '../../http/guards.ts';
import { page, pageQuery, toPage } from '../../http/pagination.ts';
import { problemSchema } from '../../http/problem.ts';
import type { App } from '../../http/types.ts';
import type { RouteContext } from '../module.ts';
import {
  createServerBody,
  disabledQuery,
  disabledToolSchema,
  projectServerParams,
  projectServersParams,
  serverParams,
  serverSchema,
  serverToolSchema,
  toolParams,
  toServer,
  toServerTool,
  updateServerBody,
} from './contracts.ts';

const problems = { 400: problemSchema, 401: problemSchema, 403: problemSchema, 404: problemSchema };
const tags = ['mcp'];

/**
 * MCP servers of a project (`/projects/:id/mcp-servers`, its owner only) and
 * of the caller (`/mcp-servers`), their tools, and the caller's switched-off
 * tools. API keys need the `chat` scope, as projects do.
 */
export function mcpRoutes(app: App, { services, guards }: RouteContext<'mcp'>) {
  const { mcp } = services;
  const onRequest = guards.user({ scope: 'chat' });
  const me = (request: FastifyRequest) => principal(request).userId;

  // The same five routes for both owners: `projectOf` reads the project from the path, or null for the caller's own.
  const crud = (base: string, params: z.ZodObject, itemParams: z.ZodObject, projectOf: (p: any) => string | null, whose: string) => {
    app.post(base, {
      schema: { tags, summary: `Register an MCP server ${whose}`, params, body: createServerBody, response: { 201: serverSchema, 409: problemSchema, ...problems } },
      onRequest,
      handler: async (request, reply) => reply.status(201).send(toServer(await mcp.create(me(request), projectOf(request.params), request.body))),
    });
    app.get(base, {
      schema: { tags, summary: `MCP servers ${whose}, newest first`, params, querystring: pageQuery, response: { 200: page(serverSchema), ...problems } },
      onRequest,
      handler: async (request) => {
        const { limit, cursor } = request.query;
        return toPage(await mcp.list(me(request), projectOf(request.params), { limit: limit + 1, cursor }), limit, toServer);
      },
    });
    app.get(`${base}/:serverId`, {
      schema: { tags, summary: `One MCP server ${whose}`, params: itemParams, response: { 200: serverSchema, ...problems } },
      onRequest,
      handler: async (request) => toServer(await mcp.get(me(request), projectOf(request.params), (request.params as { serverId: string }).serverId)),
    });
    app.patch(`${base}/:serverId`, {
      schema: { tags, summary: 'Change a server: URL, name, headers (null removes them), allow-list, enabled, approval', params: itemParams, body: updateServerBody, response: { 200: serverSchema, 409: problemSchema, ...problems } },
      onRequest,
      handler: async (request) => toServer(await mcp.update(me(request), projectOf(request.params), (request.params as { serverId: string }).serverId, request.body)),
    });
    app.delete(`${base}/:serverId`, {
      schema: { tags, summary: 'Remove a server', params: itemParams, response: { 204: z.null(), ...problems } },
      onRequest,
      handler: async (request, reply) => {
        await mcp.delete(me(request), projectOf(request.params), (request.params as { serverId: string }).serverId);
        return reply.status(204).send(null);
      },
    });
    app.get(`${base}/:serverId/tools`, {
      schema: {
        tags,
        summary: "What the server offers now (asked live), with the names the model sees, the allow-list's choice and your switch-offs",
        params: itemParams,
        response: { 200: z.object({ data: z.array(serverToolSchema) }), 502: problemSchema, ...problems },
      },
      onRequest,
      handler: async (request) => ({ data: (await mcp.serverTools(me(request), projectOf(request.params), (request.params as { serverId: string }).serverId)).map(toServerTool) }),
    });
  };

  crud('/projects/:id/mcp-servers', projectServersParams, projectServerParams, (p: { id: string }) => p.id, "of a project (its owner's)");
  crud('/mcp-servers', z.object({}), serverParams, () => null, 'of your own (offered in all your conversations)');

  app.get('/mcp-tools/disabled', {
    schema: { tags, summary: 'MCP tools you switched off, by name', querystring: disabledQuery, response: { 200: page(disabledToolSchema), ...problems } },
    onRequest,
    handler: async (request) => {
      const { limit, cursor } = request.query;
      const rows = await mcp.disabledTools(me(request), { limit: limit + 1, after: cursor });
      const more = rows.length > limit;
      const items = more ? rows.slice(0, limit) : rows;
      return { data: items.map((r) => ({ name: r.toolName, disabledAt: r.createdAt.toISOString() })), nextCursor: more ? Buffer.from(items.at(-1)!.toolName).toString('base64url') : null };
    },
  });

  app.put('/mcp-tools/disabled/:name', {
    schema: { tags, summary: 'Switch an MCP tool off for yourself (`<server>__<tool>`): never offered to you again, in any project', params: toolParams, response: { 204: z.null(), 409: problemSchema, ...problems } },
    onRequest,
    handler: async (request, reply) => {
      await mcp.disableTool(me(request), request.params.name);
      return reply.status(204).send(null);
    },
  });

  app.delete('/mcp-tools/disabled/:name', {
    schema: { tags, summary: 'Switch an MCP tool on again for yourself', params: toolParams, response: { 204: z.null(), ...problems } },
    onRequest,
    handler: async (request, reply) => {
      await mcp.enableTool(me(request), request.params.name);
      return reply.status(204).send(null);
    },
  });
}
