import { z } from 'zod';
import { JOB_STATES, QUEUE_NAME, type Job } from '../../platform/queue/queue.ts';
import type { ScheduleInfo } from '../../platform/scheduler/scheduler.ts';
import { ownersError } from './service.ts';

const json = z.unknown();

export const jobSchema = z
  .object({
    id: z.string(),
    queue: z.string(),
    state: z.enum(JOB_STATES),
    progress: json.describe('0–100, or an object the job defines'),
    result: json.describe('What the job returned, once completed'),
    error: z
      .string()
      .nullable()
      .describe("The last attempt's error, on a dead job or one waiting to retry: Parley's own message when it was written for you, otherwise that the job failed because of an internal error"),
    errorCode: z.string().nullable().describe('A stable code for `error`: the problem code of Parley\'s error, `job_timed_out`, or `internal_error`'),
    attempts: z.number().int(),
    maxAttempts: z.number().int(),
    priority: z.number().int(),
    createdAt: z.string(),
    startedAt: z.string().nullable(),
    finishedAt: z.string().nullable(),
  })
  .meta({ id: 'Job' });

/** The admin view adds the payload and the owner, and has the whole of the last error. */
export const adminJobSchema = jobSchema
  .extend({ error: z.string().nullable().describe("The last attempt's error, whole, as the job stored it"), data: json, userId: z.string().nullable() })
  .meta({ id: 'AdminJob' });

const iso = (d: Date | null) => (d ? d.toISOString() : null);

/** A job as its owner sees it: an error not written for users is not told (ownersError). */
export function toJob(j: Job) {
  const shown = ownersError(j);
  return {
    id: j.id,
    queue: j.queue,
    state: j.state,
    progress: j.progress,
    result: j.result,
    error: shown?.message ?? null,
    errorCode: shown?.code ?? null,
    attempts: j.attempts,
    maxAttempts: j.maxAttempts,
    priority: j.priority,
    createdAt: j.createdAt.toISOString(),
    startedAt: iso(j.startedAt),
    finishedAt: iso(j.finishedAt),
  };
}

export const toAdminJob = (j: Job) => ({ ...toJob(j), error: j.error, data: j.data, userId: j.userId });

export const jobIdParam = z.object({ id: z.string().min(1).max(200).regex(/^[\w:.-]+$/) });

export const jobsQuery = z.object({
  state: z.enum(JOB_STATES).optional(),
  queue: z.string().regex(QUEUE_NAME).optional(),
  limit: z.coerce.number().int().min(1).max(100).default(20),
  cursor: z.string().max(200).regex(/^[\w-]+$/).optional(),
});

export const scheduleSchema = z
  .object({ name: z.string(), cron: z.string(), timezone: z.string(), queue: z.string(), nextRunAt: z.string().nullable(), lastRunAt: z.string().nullable() })
  .meta({ id: 'Schedule' });

export const toSchedule = (s: ScheduleInfo) => ({ ...s, nextRunAt: iso(s.nextRunAt), lastRunAt: iso(s.lastRunAt) });

export const deadLetterSchema = z
  .object({ id: z.string(), type: z.string(), group: z.string(), payload: json, occurredAt: z.string(), deliveries: z.number().int(), error: z.string(), failedAt: z.string() })
  .meta({ id: 'DeadLetter' });
