import { asc, eq } from 'drizzle-orm';
import type { Db } from '../../platform/db/database.ts';
import type { ExportSource } from '../export/index.ts';
import { apiKeys } from './schema.ts';

/** The user's API keys as the keys page lists them: names, scopes and dates; never a key or its hash. */
export const apiKeysExport = (db: Db): ExportSource => ({
  name: 'api-keys',
  async write(userId, archive) {
    const list = await db.select().from(apiKeys).where(eq(apiKeys.userId, userId)).orderBy(asc(apiKeys.createdAt));
    archive.json('keys.json', list.map(({ keyHash: _h, userId: _u, ...k }) => k));
  },
});
