import type { SQL } from 'drizzle-orm';
import type { PgColumn, PgTable } from 'drizzle-orm/pg-core';
import { z } from 'zod';
import type { Announce } from '../../platform/bus/bus.ts';
import { envInt } from '../../platform/config/env.ts';
import { deleteSome } from '../../platform/db/batches.ts';
import type { Db } from '../../platform/db/database.ts';
import type { Logger } from '../../platform/observability/logger.ts';
import type { JobContext, JobQueue } from '../../platform/queue/queue.ts';
import type { UsersRepository } from './repository.ts';

/**
 * What deleting an account removes from one module (module.ts `erasure`), a batch at a time: one
 * transaction over everything a heavy account holds (hundreds of thousands of messages) would hold its
 * locks for many seconds, and past the database's statement timeout could never finish at all.
 */
export interface ErasureSource {
  /** The module's name, for the logs. */
  name: string;
  /**
   * Deletes up to about `limit` of the user's rows, rows that others point at last (a message's replies
   * before it, a passage before its item); returns how many went, 0 once none are left.
   * What the module keeps outside the database goes on `user.deleted`, once the account's row is gone.
   */
  erase(userId: string, limit: number): Promise<number>;
}

/** One table a module's erasure empties: the user's rows in it (`where`), in `order` when it matters. */
export interface ErasureStep {
  table: PgTable & { id: PgColumn };
  where(userId: string, db: Db): SQL;
  order?: SQL[];
  /**
   * Told the ids of each batch deleted: for rows others' rows point at without a foreign key (another user's
   * document attaching this file, their collection indexing this document), announced as deleted ones are.
   */
  gone?(ids: string[], userId: string): void;
}

/**
 * A module's erasure as the tables it empties, in order (rows that point at others before the rows they point
 * at, so a cascade never reaches past a batch): each call deletes a batch from the first table that still holds
 * the user's rows.
 */
export function erasureOf(db: Db, name: string, ...steps: ErasureStep[]): ErasureSource {
  return {
    name,
    async erase(userId, limit) {
      for (const step of steps) {
        const deleted = await deleteSome(db, step.table, step.where(userId, db), limit, step.order);
        if (deleted.length === 0) continue;
        step.gone?.(deleted, userId);
        return deleted.length;
      }
      return 0;
    },
  };
}

export interface ErasureSettings {
  /** Rows one statement deletes; each is its own transaction. */
  batch: number;
}

/** The env fields config.ts validates for erasing deleted accounts. */
export const usersEnv = {
  USERS_ERASE_BATCH: envInt(1, 10_000).default(500),
};

const usersEnvObject = z.object(usersEnv);

export const usersSettings = (e: z.output<typeof usersEnvObject>): ErasureSettings => ({ batch: e.USERS_ERASE_BATCH });

export const ERASE_QUEUE = 'users.erase';

/** Retried for about an hour and a half (5 s doubling, ten times); then an administrator sees it among the dead jobs. */
const ERASE_JOB = { attempts: 10, backoffMs: 5_000 };

export interface ErasureDeps {
  repo: UsersRepository;
  queue: JobQueue;
  sources: () => ErasureSource[];
  settings: ErasureSettings;
  announce: Announce;
  logger: Logger;
}

/**
 * Deleting an account in two steps: at once, in the caller's transaction, the account is marked deleted
 * (signed out everywhere, its address free, absent from every read) and its erasure queued (outbox: both or
 * neither); then the job erases each module's rows a batch at a time, then the account's row (what is left
 * goes through foreign keys), and announces `user.deleted`. An attempt cut short (a worker stopped, the
 * database away) is retried and goes on from what is left.
 */
export function createAccountErasure(deps: ErasureDeps) {
  return {
    /** False, and nothing done, when the account was deleted already. */
    async begin(userId: string, tx: Db): Promise<boolean> {
      if (!(await deps.repo.markDeleted(userId, tx))) return false;
      await deps.queue.enqueue(ERASE_QUEUE, { userId }, { ...ERASE_JOB, tx, idempotencyKey: `erase:${userId}` });
      return true;
    },

    async run({ userId }: { userId: string }, ctx: Pick<JobContext, 'signal'>): Promise<{ erased: number }> {
      let erased = 0;
      const standing = await deps.repo.standing(userId);
      // Never a live account's: `user.deleted` makes other modules drop what they keep of it.
      if (standing === 'live') return { erased };
      if (standing === 'deleted') {
        for (const source of deps.sources()) {
          for (;;) {
            ctx.signal.throwIfAborted();
            const deleted = await source.erase(userId, deps.settings.batch);
            if (deleted === 0) break;
            erased += deleted;
          }
        }
        await deps.repo.delete(userId);
        deps.logger.info({ userId, erased }, 'account erased');
      }
      // Also when an earlier attempt deleted the row and stopped before this: its handlers take it twice alike.
      deps.announce('user.deleted', { userId });
      return { erased };
    },
  };
}

export type AccountErasure = ReturnType<typeof createAccountErasure>;
