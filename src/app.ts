import { randomUUID } from 'node:crypto';
import fastifyCookie from '@fastify/cookie';
import fastifySwagger from '@fastify/swagger';
import Fastify, { type FastifyBaseLogger } from 'fastify';
import {
  jsonSchemaTransform,
  jsonSchemaTransformObject,
  serializerCompiler,
  validatorCompiler,
  type ZodTypeProvider,
} from 'fastify-type-provider-zod';
import type { Deps } from './deps.ts';
import type { Subscription } from './platform/bus/bus.ts';
import { apiReference } from './http/api-reference.ts';
import { createGuards } from './http/guards.ts';
import { createIdempotency } from './http/idempotency.ts';
import { installNulGuard } from './http/nul-guard.ts';
import { installProblemHandlers, sendProblem, writeClientError } from './http/problem.ts';
import { refineOpenApi } from './http/openapi.ts';
import { trafficOf } from './http/traffic.ts';
import type { App } from './http/types.ts';
import { limitRequests } from './modules/limits/index.ts';
import { MODULES } from './modules/index.ts';
import { createServices, moduleContext, startServices, stopServices, usable, type Services } from './services.ts';

/** Builds the HTTP app over ready deps. Does not listen. */
export async function buildApp(deps: Deps, services: Services = createServices(deps)): Promise<App> {
  await startServices(deps, services);
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
  // Each module's bus subscriptions run while the app serves (the real-time relay): started once ready, closed first on the way out.
  const subscriptions: Subscription[] = [];
  app.addHook('onReady', async () => {
    for (const m of MODULES) {
      for (const s of m.subscriptions?.(moduleContext(deps, services, m)) ?? []) subscriptions.push(await deps.bus.subscribe(s.group, s.types, s.handler, { batch: s.batch }));
    }
  });
  // After the server has stopped and in-flight requests have ended: nothing metered is lost.
  app.addHook('onClose', async () => {
    await Promise.all(subscriptions.splice(0).map((s) => s.close()));
    await stopServices(services);
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
    transformObject: (documentObject) => refineOpenApi(jsonSchemaTransformObject(documentObject)),
  });
  apiReference(app);

  const guards = createGuards({
    authenticate: services.authenticate,
    allowedOrigins: deps.config.allowedOrigins,
    afterAuthenticate: limitRequests(services.limits),
  });
  const idempotency = createIdempotency(deps.db);
  // Each module's routes see its own services and those it named, never the whole map or the adapters.
  const contextOf = (m: (typeof MODULES)[number]) => ({ services: usable(m, services), guards, idempotency, config: deps.config });
  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());
  for (const m of MODULES) await m.rootRoutes?.(app, contextOf(m));
  await app.register(
    async (v1) => {
      for (const m of MODULES) await m.routes?.(v1 as App, contextOf(m));
    },
    { prefix: '/v1' },
  );
  await app.ready();
  return app as App;
}
