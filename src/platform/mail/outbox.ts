import { and, desc, eq, lt, type SQL } from 'drizzle-orm';
import type { Db } from '../db/database.ts';
import { mailOutbox } from './schema.ts';

export type OutboxRow = typeof mailOutbox.$inferSelect;

/** Reads the record of sent mail (where mail goes in embedded mode), newest first. */
export function createOutbox(db: Db) {
  return {
    list(opts: { limit: number; cursor?: string; to?: string }): Promise<OutboxRow[]> {
      const where: SQL[] = [];
      if (opts.cursor) where.push(lt(mailOutbox.id, opts.cursor));
      if (opts.to) where.push(eq(mailOutbox.to, opts.to));
      return db.select().from(mailOutbox).where(and(...where)).orderBy(desc(mailOutbox.id)).limit(opts.limit);
    },
  };
}

export type Outbox = ReturnType<typeof createOutbox>;
