import { AppError } from '../../errors.ts';
import type { Announce } from '../../platform/bus/bus.ts';
import type { Db } from '../../platform/db/database.ts';
import type { Logger } from '../../platform/observability/logger.ts';
import type { EnqueueOptions, JobHandler } from '../../platform/queue/queue.ts';
import type { Storage } from '../../platform/storage/storage.ts';
import type { JobDefinition } from '../module.ts';
import { thumbnailKey, type Images } from './images.ts';
import { createFilesRepository } from './repository.ts';

export const THUMBNAIL_QUEUE = 'files.thumbnail';
export const PURGE_QUEUE = 'files.purge';

export interface FileJob {
  userId: string;
  fileId: string;
}

/** A thumbnail: a few tries for a storage hiccup; an image that cannot be decoded fails at once. */
export const thumbnailJobOptions = (job: FileJob): EnqueueOptions => ({ userId: job.userId, idempotencyKey: `thumbnail:${job.fileId}`, attempts: 3 });
/**
 * A deleted file's blobs: retried with a doubling delay from 5 s over about five and a
 * half hours, so a storage outage delays the removal instead of leaving orphans; then
 * the job is dead, where an admin sees it and can retry it.
 */
export const purgeJobOptions = (job: FileJob): EnqueueOptions => ({ userId: job.userId, attempts: 12, backoffMs: 5_000 });

/** Progress is announced at these shares of the original read (a job row update each). */
const MILESTONES = [25, 50, 75, 100];

/**
 * The files module's queued work: a thumbnail after an image is uploaded (its
 * progress and outcome announced to the owner's `files` and `file:<id>`
 * topics), and the removal of a deleted file's blobs.
 */
export function createFileJobs(d: { db: Db; storage: Storage; images: Images; announce: Announce; logger: Logger }) {
  const repo = createFilesRepository(d.db);

  const thumbnail: JobHandler<FileJob, { width: number; height: number } | { error: string } | { skipped: string }> = async ({ userId, fileId }, ctx) => {
    const file = await repo.get(userId, fileId);
    if (!file) return { skipped: 'file deleted' };
    const reports: Promise<void>[] = [];
    let next = 0;
    const onRead = (bytes: number) => {
      const percent = file.size ? Math.floor((100 * bytes) / file.size) : 100;
      if (next >= MILESTONES.length || percent < MILESTONES[next]!) return;
      while (next < MILESTONES.length && percent >= MILESTONES[next]!) next++;
      const reached = MILESTONES[next - 1]!;
      d.announce('file.thumbnail.progress', { userId, fileId, jobId: ctx.id, percent: reached });
      reports.push(ctx.progress(reached).catch((err: unknown) => d.logger.warn({ err, fileId }, 'thumbnail progress not recorded')));
    };
    const fail = async (code: string) => {
      await repo.setThumbnail(userId, fileId, 'failed');
      d.announce('file.thumbnail.failed', { userId, fileId, code });
    };
    try {
      const made = await d.images.thumbnail(file, onRead);
      await Promise.all(reports);
      // Deleted while it was being made: the purge may have run already, so this blob is ours to remove.
      if (!(await repo.setThumbnail(userId, fileId, 'ready'))) {
        await d.storage.delete(thumbnailKey(file));
        return { skipped: 'file deleted' };
      }
      d.announce('file.thumbnail.ready', { userId, fileId, width: made.width, height: made.height });
      return { width: made.width, height: made.height };
    } catch (err) {
      await Promise.all(reports);
      // The image itself is at fault (undecodable, over the pixel limit, its bytes gone): no retry would help.
      if (err instanceof AppError) {
        await fail(err.code);
        return { error: err.code };
      }
      if (ctx.attempt >= ctx.maxAttempts) await fail('thumbnail_failed');
      throw err;
    }
  };

  const purge: JobHandler<FileJob, { removed: number }> = async ({ userId, fileId }) => ({ removed: await d.storage.deletePrefix(`files/${userId}/${fileId}/`) });

  return [
    { queue: THUMBNAIL_QUEUE, handler: thumbnail, options: { concurrency: 2, timeoutMs: 120_000 } },
    { queue: PURGE_QUEUE, handler: purge, options: { concurrency: 4, timeoutMs: 60_000 } },
  ] satisfies JobDefinition[];
}
