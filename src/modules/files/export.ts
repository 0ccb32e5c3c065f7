import { asc, eq } from 'drizzle-orm';
import type { Db } from '../../platform/db/database.ts';
import type { Storage } from '../../platform/storage/storage.ts';
import { segment, type ExportSource } from '../export/index.ts';
import { files } from './schema.ts';

/** Every stored file: its bytes under `<id>/<name>` (read from storage one at a time, as the zip reaches it) and an index with types, sizes and SHA-256. */
export const filesExport = (db: Db, storage: Storage): ExportSource => ({
  name: 'files',
  async write(userId, archive) {
    const list = await db.select().from(files).where(eq(files.userId, userId)).orderBy(asc(files.createdAt), asc(files.id));
    const index = [];
    for (const f of list) {
      const path = `${f.id}/${segment(f.name)}`;
      archive.file(path, () => storage.get(f.storageKey), { mtime: f.createdAt });
      index.push({ id: f.id, name: f.name, path, mimeType: f.mimeType, size: f.size, sha256: f.sha256, projectId: f.projectId, conversationId: f.conversationId, createdAt: f.createdAt });
    }
    archive.json('index.json', index);
  },
});
