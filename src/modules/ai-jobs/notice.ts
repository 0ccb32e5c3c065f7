import type { Logger } from '../../platform/observability/logger.ts';
import type { NotificationCategory, ServiceMap } from '../module.ts';
import type { AiJobResult } from './contracts.ts';

/** The notification category of background generations that finished (one that failed every attempt is `job.failed`, from the jobs module). */
export const aiJobCompletedCategory: NotificationCategory = {
  name: 'ai.job.completed',
  description: 'A generation you queued in the background (POST /v1/ai/jobs) has finished.',
  channels: { inApp: true, email: true },
};

/**
 * Tells a user their generation is done: always when they asked (`notify: true`), never when they said
 * not to, and otherwise only when they have no WebSocket open on any instance (as answer.ready does: a
 * connected client hears of it on the job's topic). Sent once per job, retries included (the job id is the
 * notification's source). A notice that cannot be sent is logged: it must not fail a finished generation.
 */
export function aiJobCompletedNotice(d: {
  notifications: Pick<ServiceMap['notifications'], 'notify'>;
  realtime: Pick<ServiceMap['realtime'], 'connected'>;
  logger?: Logger;
}) {
  return async (job: { userId: string; jobId: string; notify: boolean | null; result: AiJobResult }): Promise<void> => {
    try {
      if (job.notify === false) return;
      if (job.notify === null && (await d.realtime.connected(job.userId))) return;
      await d.notifications.notify({
        userId: job.userId,
        category: aiJobCompletedCategory.name,
        title: 'Your generation is ready',
        body: `The text you asked ${job.result.model} for in the background has finished.`,
        link: `/jobs/${job.jobId}`,
        data: { jobId: job.jobId, model: job.result.model, finishReason: job.result.finishReason },
        sourceKey: `ai.job.completed:${job.jobId}`,
      });
    } catch (err) {
      d.logger?.error({ err, jobId: job.jobId }, 'could not send the ai.job.completed notice');
    }
  };
}
