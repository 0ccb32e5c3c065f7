import { z } from 'zod';
import { NotFound } from '../../errors.ts';
import { principal } from '../../http/guards.ts';
import { problemSchema } from '../../http/problem.ts';
import type { App } from '../../http/types.ts';
import type { RouteContext } from '../module.ts';
import { adminJobSchema, deadLetterSchema, jobIdParam, jobSchema, jobsQuery, scheduleSchema, toAdminJob, toJob, toSchedule } from './contracts.ts';

const problems = { 400: problemSchema, 401: problemSchema, 403: problemSchema, 404: problemSchema };

/** A user's own jobs; the admin's view of every queue, the schedules and the event bus's dead letters. */
export function jobsRoutes(app: App, { services, guards }: RouteContext<'jobs'>) {
  const { jobs } = services;
  const admin = guards.admin();

  app.get('/jobs/:id', {
    schema: {
      tags: ['jobs'],
      summary: 'A background job of yours: state, progress, result or error',
      description: 'Follow it live on the WebSocket (`/v1/ws`, topic `job:{id}`).',
      params: jobIdParam,
      response: { 200: jobSchema, ...problems },
    },
    onRequest: guards.user({ scope: 'jobs:read' }),
    handler: async (request) => toJob(await jobs.getOwn(principal(request).userId, request.params.id)),
  });

  app.get('/admin/jobs', {
    schema: {
      tags: ['admin'],
      summary: 'Jobs of every queue, newest first, by state and queue',
      querystring: jobsQuery,
      response: { 200: z.object({ data: z.array(adminJobSchema), nextCursor: z.string().nullable() }), ...problems },
    },
    onRequest: admin,
    handler: async (request) => {
      const page = await jobs.list(request.query);
      return { data: page.jobs.map(toAdminJob), nextCursor: page.nextCursor };
    },
  });

  app.get('/admin/jobs/:id', {
    schema: { tags: ['admin'], summary: 'Any job, with its payload and owner', params: jobIdParam, response: { 200: adminJobSchema, ...problems } },
    onRequest: admin,
    handler: async (request) => {
      const job = await jobs.get(request.params.id);
      if (!job) throw NotFound('Job', 'job_not_found');
      return toAdminJob(job);
    },
  });

  app.post('/admin/jobs/:id/retry', {
    schema: { tags: ['admin'], summary: 'Run a dead job again, its attempts reset', params: jobIdParam, response: { 200: adminJobSchema, 409: problemSchema, ...problems } },
    onRequest: admin,
    handler: async (request) => toAdminJob(await jobs.retry(request.params.id)),
  });

  app.delete('/admin/jobs/:id', {
    schema: {
      tags: ['admin'],
      summary: 'Discard a job that is not running',
      description: "409 `job_active` for a running job, `job_scheduled` for a schedule's run that has not started, `job_must_run` for a job that must run (`users.erase`) until it completed.",
      params: jobIdParam,
      response: { 204: z.null(), 409: problemSchema, ...problems },
    },
    onRequest: admin,
    handler: async (request, reply) => {
      await jobs.discard(request.params.id);
      return reply.status(204).send(null);
    },
  });

  app.get('/admin/schedules', {
    schema: { tags: ['admin'], summary: 'The cron tasks defined in code, with their next and last firing', response: { 200: z.object({ data: z.array(scheduleSchema) }), ...problems } },
    onRequest: admin,
    handler: async () => ({ data: (await jobs.schedules()).map(toSchedule) }),
  });

  app.get('/admin/events/dead-letters', {
    schema: {
      tags: ['admin'],
      summary: 'Domain events whose handler kept failing, newest first',
      querystring: z.object({ limit: z.coerce.number().int().min(1).max(500).default(100) }),
      response: { 200: z.object({ data: z.array(deadLetterSchema) }), ...problems },
    },
    onRequest: admin,
    handler: async (request) => ({ data: await jobs.deadLetters(request.query.limit) }),
  });
}
