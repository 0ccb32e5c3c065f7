import { principal } from '../../http/guards.ts';
import { problemSchema } from '../../http/problem.ts';
import type { App } from '../../http/types.ts';
import type { RouteContext } from '../module.ts';
import { projectParams, projectRulesBody, projectRulesSchema } from './contracts.ts';
import type { ProjectRules } from './service.ts';

const problems = { 400: problemSchema, 401: problemSchema, 403: problemSchema, 404: problemSchema };
const tags = ['safety'];

/** A project's safety rules, for whoever may edit the project. API keys need the `chat` scope, as for projects. */
export function safetyRoutes(app: App, { services, guards }: RouteContext<'safety'>) {
  const { safety } = services;
  const onRequest = guards.user({ scope: 'chat' });
  const view = (projectId: string, r: ProjectRules & { updatedAt: Date | null }) => ({
    projectId,
    blockedTerms: r.blockedTerms,
    patterns: r.patterns,
    maxInputChars: r.maxInputChars,
    moderation: r.moderation,
    moderationEnabled: safety.moderationEnabled,
    updatedAt: r.updatedAt?.toISOString() ?? null,
  });

  app.get('/projects/:id/safety', {
    schema: { tags, summary: "A project's safety rules", params: projectParams, response: { 200: projectRulesSchema, ...problems } },
    onRequest,
    handler: async (request) => view(request.params.id, await safety.getProjectRules(principal(request).userId, request.params.id)),
  });

  app.put('/projects/:id/safety', {
    schema: {
      tags,
      summary: "Replace a project's safety rules",
      description:
        'Blocked terms, patterns, a length cap and how the moderation provider\'s verdict is read, on top of the deployment\'s rules (SAFETY_RULES), which always apply. ' +
        'A pattern that does not compile, has a backreference or a repeated group that repeats or alternates inside (catastrophic backtracking) is a 400 `invalid_safety_rules` naming it.',
      params: projectParams,
      body: projectRulesBody,
      response: { 200: projectRulesSchema, ...problems },
    },
    onRequest,
    handler: async (request) => view(request.params.id, await safety.setProjectRules(principal(request).userId, request.params.id, request.body)),
  });
}
