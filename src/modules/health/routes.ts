import { z } from 'zod';
import type { App } from '../../http/types.ts';
import { clusterContentType, clusterMetrics } from '../../platform/observability/cluster-metrics.ts';
import type { RouteContext } from '../module.ts';
import { homeRoute } from './home.ts';

export function healthRoutes(app: App, { services, config }: RouteContext<'health'>) {
  const { health } = services;
  // The console takes `/` when it is served.
  if (!config.console.enabled) homeRoute(app);

  app.get('/health', {
    schema: { security: [], tags: ['health'], summary: 'Liveness: the process is up', response: { 200: z.object({ status: z.literal('ok') }) } },
    logLevel: 'warn',
    handler: async () => ({ status: 'ok' as const }),
  });

  app.get('/ready', {
    schema: {
      security: [],
      tags: ['health'],
      summary: 'Readiness: the database, the blob storage and, when configured, Redis answer',
      response: { 200: readiness, 503: readiness },
    },
    logLevel: 'warn',
    handler: async (_request, reply) => {
      const checks = await health.checks();
      const ok = Object.values(checks).every((c) => c === 'ok');
      return reply.status(ok ? 200 : 503).send({ status: ok ? 'ready' : 'unavailable', checks });
    },
  });

  app.get('/metrics', {
    schema: {
      security: [],
      tags: ['health'],
      summary: 'Prometheus metrics',
      description: "Under `--processes N`, every process's metrics, gathered by the primary (`parley_process_info{pid}` names each); `?process=self` gives only those of the process that answered.",
      querystring: z.object({ process: z.enum(['self']).optional() }),
      hide: false,
    },
    logLevel: 'warn',
    handler: async (request, reply) => {
      const whole = request.query.process === 'self' ? undefined : clusterMetrics();
      if (whole) {
        reply.type(clusterContentType);
        return whole;
      }
      reply.type(health.metrics.contentType);
      return health.metrics.metrics();
    },
  });
}

const readiness = z.object({ status: z.enum(['ready', 'unavailable']), checks: z.record(z.string(), z.enum(['ok', 'down'])) });
