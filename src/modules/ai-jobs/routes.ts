import { problemSchema } from '../../http/problem.ts';
import { idempotencyHeaders, idempotencyOf } from '../../http/idempotency.ts';
import { principal } from '../../http/guards.ts';
import type { App } from '../../http/types.ts';
import type { RouteContext } from '../module.ts';
import { aiJobAccepted, aiJobBody } from './contracts.ts';

const problems = { 400: problemSchema, 401: problemSchema, 402: problemSchema, 403: problemSchema, 404: problemSchema, 409: problemSchema, 422: problemSchema, 429: problemSchema };

/** A generation queued as a background job: accepted at once, followed by its job id. */
export function aiJobsRoutes(app: App, { services, guards, idempotency }: RouteContext<'aiJobs' | 'jobs'>) {
  app.post('/ai/jobs', {
    schema: {
      tags: ['ai'],
      summary: 'Run a generation as a background job',
      description:
        'Answers 202 with the job id at once; the model, project and budget are checked first (400, 404, 402). Follow it at `GET /v1/jobs/{id}` ' +
        '(its `result`: text, model, usage, cost, finish reason) or on the WebSocket topic `job:{id}` (tokens so far, then completion). ' +
        'A retry with the same `Idempotency-Key` answers with the same job.',
      headers: idempotencyHeaders,
      body: aiJobBody,
      response: { 202: aiJobAccepted, ...problems },
    },
    onRequest: guards.user({ scope: 'chat' }),
    handler: async (request, reply) => {
      const caller = principal(request);
      const { resourceId, replayed } = await idempotency.once(idempotencyOf(request, caller.userId, { body: request.body }), async () => (await services.aiJobs.submit(caller, request.body)).id);
      // A replay says where the job is now; a new job is queued.
      const state = replayed ? (await services.jobs.get(resourceId))?.state : undefined;
      const status = state === 'active' || state === 'completed' || state === 'dead' ? state : 'queued';
      return reply.status(202).send({ id: resourceId, status, statusUrl: `/v1/jobs/${resourceId}` });
    },
  });
}
