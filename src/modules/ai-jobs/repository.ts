import { lt, eq } from 'drizzle-orm';
import type { Db } from '../../platform/db/database.ts';
import type { AiJobResult } from './contracts.ts';
import { aiJobResults } from './schema.ts';

/** The results of finished generations, by job id. */
export function createAiJobResults(db: Db) {
  async function get(jobId: string): Promise<AiJobResult | undefined> {
    const [row] = await db.select({ result: aiJobResults.result }).from(aiJobResults).where(eq(aiJobResults.jobId, jobId));
    return row?.result;
  }

  return {
    get,

    /** Keeps the first result stored for a job: two attempts racing (a worker presumed dead that was not) agree on one. */
    async store(jobId: string, userId: string, result: AiJobResult): Promise<AiJobResult> {
      const [row] = await db.insert(aiJobResults).values({ jobId, userId, result }).onConflictDoNothing().returning({ result: aiJobResults.result });
      return row?.result ?? (await get(jobId))!;
    },

    async purge(before: Date): Promise<number> {
      const gone = await db.delete(aiJobResults).where(lt(aiJobResults.createdAt, before)).returning({ jobId: aiJobResults.jobId });
      return gone.length;
    },
  };
}

export type AiJobResults = ReturnType<typeof createAiJobResults>;
