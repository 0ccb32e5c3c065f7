import { randomUUID } from 'node:crypto';
import fastifyCookie from '@fastify/cookie';
import fastifySwagger from '@fastify/swagger';
import scalar from '@scalar/fastify-api-reference';
import Fastify, { type FastifyBaseLogger } from 'fastify';
import {
  jsonSchemaTransform,
  jsonSchemaTransformObject,
  serializerCompiler,
  validatorCompiler,
  type ZodTypeProvider,
} from 'fastify-type-provider-zod';
import type { Deps } from './deps.ts';
import { createGuards } from './http/guards.ts';
import { installNulGuard } from './http/nul-guard.ts';
import { installProblemHandlers, sendProblem, writeClientError } from './http/problem.ts';
import { trafficOf } from './http/traffic.ts';
import type { App, RouteContext } from './http/types.ts';
import { adminRoutes } from './modules/admin/routes.ts';
import { gatewayRoutes } from './modules/ai/gateway-routes.ts';
import { aiRoutes } from './modules/ai/routes.ts';
import { apiKeysRoutes } from './modules/api-keys/routes.ts';
import { oauthRoutes } from './modules/auth/oauth/routes.ts';
import { accountRoutes } from './modules/auth/account-routes.ts';
import { authRoutes, jwksRoute } from './modules/auth/routes.ts';
import { messagesRoutes } from './modules/chat/message-routes.ts';
import { conversationsRoutes } from './modules/chat/routes.ts';
import { generationRoutes } from './modules/chat/generation-routes.ts';
import { searchRoutes } from './modules/chat/search-routes.ts';
import { healthRoutes } from './modules/health/routes.ts';
import { limitRequests, limitsRoutes } from './modules/limits/routes.ts';
import { projectsRoutes } from './modules/projects/routes.ts';
import { realtimeRoutes } from './modules/realtime/routes.ts';
import { usersRoutes } from './modules/users/routes.ts';
import { createServices, type Services } from './services.ts';
import { usageRoutes } from './modules/usage/routes.ts';
import { requestsRoutes } from './modules/usage/requests-routes.ts';
import { storageRoutes } from './modules/usage/storage-routes.ts';
import { jobsRoutes } from './modules/jobs/routes.ts';

/** The routes of every module under /v1, in one list so the API's shape is visible at a glance. */
const V1_MODULES: Array<(app: App, ctx: RouteContext) => void> = [
  authRoutes,
  accountRoutes,
  oauthRoutes,
  usersRoutes,
  apiKeysRoutes,
  adminRoutes,
  limitsRoutes,
  projectsRoutes,
  conversationsRoutes,
  messagesRoutes,
  generationRoutes,
  searchRoutes,
  aiRoutes,
  gatewayRoutes,
  usageRoutes,
  requestsRoutes,
  storageRoutes,
  realtimeRoutes,
  jobsRoutes,
];

/** Builds the HTTP app over ready deps. Does not listen. */
export async function buildApp(deps: Deps, services: Services = createServices(deps)): Promise<App> {
  await services.keys.init();
  const app = Fastify({
    loggerInstance: deps.logger as FastifyBaseLogger,
    bodyLimit: deps.config.bodyLimit,
    trustProxy: deps.config.trustProxy,
    genReqId: (req) => {
      const given = req.headers['x-request-id'];
      return typeof given === 'string' && /^[\w.-]{1,128}$/.test(given) ? given : randomUUID();
    },
    return503OnClosing: true,
    clientErrorHandler: writeClientError,
    // Malformed or over-long URLs are refused by the router before any handler: still a problem response.
    frameworkErrors: (err, request, reply) => {
      const status = err.statusCode ?? 400;
      sendProblem(reply, request, { status, title: status === 414 ? 'URI Too Long' : 'Bad Request', detail: err.message, code: status === 414 ? 'url_too_long' : 'bad_url' });
    },
  }).withTypeProvider<ZodTypeProvider>();

  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);
  installProblemHandlers(app);
  installNulGuard(app);
  // Once closing, answer in-flight requests with Connection: close; otherwise their keep-alive
  // sockets stay open after the response and close() waits out keepAliveTimeout (72 s).
  let closing = false;
  app.addHook('preClose', async () => {
    closing = true;
  });
  app.addHook('onSend', async (request, reply) => {
    reply.header('x-request-id', request.id);
    if (closing) reply.header('connection', 'close');
  });
  app.addHook('onResponse', async (request, reply) => {
    const route = request.routeOptions.url ?? 'unmatched';
    deps.metrics.httpDuration.observe({ method: request.method, route, status: String(reply.statusCode) }, reply.elapsedTime / 1000);
    services.usage.recorder.countRequest({ userId: request.principal?.userId ?? null, method: request.method, route, ...trafficOf(request, reply) });
  });
  // After the server has stopped and in-flight requests have ended: nothing metered is lost.
  app.addHook('onClose', async () => {
    await services.usage.close();
  });

  await app.register(fastifyCookie);
  await app.register(fastifySwagger, {
    openapi: {
      openapi: '3.1.0',
      info: { title: 'Parley API', version: '1', description: 'Self-hostable backend for AI assistant products.' },
      components: {
        securitySchemes: {
          bearer: { type: 'http', scheme: 'bearer', description: 'Access JWT or API key (pk_…)' },
          cookie: { type: 'apiKey', in: 'cookie', name: 'parley_access' },
        },
      },
      security: [{ bearer: [] }, { cookie: [] }],
    },
    transform: jsonSchemaTransform,
    transformObject: jsonSchemaTransformObject,
  });
  await app.register(scalar, { routePrefix: '/docs', configuration: { url: '/openapi.json' } });

  const guards = createGuards({
    authenticate: services.authenticate,
    allowedOrigins: deps.config.allowedOrigins,
    afterAuthenticate: limitRequests(services.limits),
  });
  const ctx: RouteContext = { deps, services, guards };
  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());
  healthRoutes(app, ctx);
  jwksRoute(app, ctx);
  await app.register(
    async (v1) => {
      for (const register of V1_MODULES) register(v1 as App, ctx);
    },
    { prefix: '/v1' },
  );
  await app.ready();
  return app as App;
}
