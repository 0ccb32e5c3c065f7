import { z } from 'zod';
import { JOB_STATES, QUEUE_NAME, type Job } from '../../platform/queue/queue.ts';
import type { ScheduleInfo } from '../../platform/scheduler/scheduler.ts';

const json = z.unknown();

export const jobSchema = z
  .object({
    id: z.string(),
    queue: z.string(),
    state: z.enum(JOB_STATES),
    progress: json.describe('0–100, or an object the job defines'),
    result: json.describe('What the job returned, once completed'),
    error: z.string().nullable().describe('The last attempt\'s error: on a dead job, or one waiting to retry'),
    attempts: z.number().int(),
    maxAttempts: z.number().int(),
    priority: z.number().int(),
    createdAt: z.string(),
    startedAt: z.string().nullable(),
    finishedAt: z.string().nullable(),
  })
  .meta({ id: 'Job' });

/** The admin view adds the payload and the owner. */
export const adminJobSchema = jobSchema.extend({ data: json, userId: z.string().nullable() }).meta({ id: 'AdminJob' });

const iso = (d: Date | null) => (d ? d.toISOString() : null);

export const toJob = (j: Job) => ({
  id: j.id,
  queue: j.queue,
  state: j.state,
  progress: j.progress,
  result: j.result,
  error: j.error,
  attempts: j.attempts,
  maxAttempts: j.maxAttempts,
  priority: j.priority,
  createdAt: j.createdAt.toISOString(),
  startedAt: iso(j.startedAt),
  finishedAt: iso(j.finishedAt),
});

export const toAdminJob = (j: Job) => ({ ...toJob(j), data: j.data, userId: j.userId });

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
