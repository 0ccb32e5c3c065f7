import { eq } from 'drizzle-orm';
import { deleteSome } from '../../platform/db/batches.ts';
import type { Db } from '../../platform/db/database.ts';
import type { ErasureSource } from '../users/index.ts';
import { aiResponses } from './schema.ts';

/** A deleted account's stored Responses API responses (kept for `previous_response_id`). */
export const aiErasure = (db: Db): ErasureSource => ({
  name: 'ai',
  erase: (userId, limit) => deleteSome(db, aiResponses, eq(aiResponses.userId, userId), limit),
});
