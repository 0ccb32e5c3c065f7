import { eq } from 'drizzle-orm';
import type { Db } from '../../platform/db/database.ts';
import type { ExportSource } from '../export/index.ts';
import { readPreferences } from './preferences.ts';
import { users } from './schema.ts';
import { toPublicUser } from './service.ts';

/** The profile and preferences, as `GET /v1/users/me` and its preferences show them. */
export const usersExport = (db: Db): ExportSource => ({
  name: 'users',
  async write(userId, archive) {
    const [row] = await db.select().from(users).where(eq(users.id, userId));
    if (!row) return;
    archive.json('profile.json', { ...toPublicUser(row), preferences: readPreferences(row.preferences) });
  },
});
