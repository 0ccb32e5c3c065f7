import { eq } from 'drizzle-orm';
import type { Db } from '../../platform/db/database.ts';
import { erasureOf } from '../users/index.ts';
import { aiResponses } from './schema.ts';

/** A deleted account's stored Responses API responses (kept for `previous_response_id`). */
export const aiErasure = (db: Db) => erasureOf(db, 'ai', { table: aiResponses, where: (userId) => eq(aiResponses.userId, userId) });
