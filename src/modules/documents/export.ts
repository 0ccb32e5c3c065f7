import { asc, eq, inArray } from 'drizzle-orm';
import type { Db } from '../../platform/db/database.ts';
import { segment, type ExportSource } from '../export/index.ts';
import { documentComments, documents, documentVersions } from './schema.ts';

/** The documents the user owns: each as Markdown, and as JSON with every version and comment. */
export const documentsExport = (db: Db): ExportSource => ({
  name: 'documents',
  async write(userId, archive) {
    const list = await db.select().from(documents).where(eq(documents.ownerId, userId)).orderBy(asc(documents.createdAt), asc(documents.id));
    const ids = list.map((d) => d.id);
    const [versions, comments] = ids.length
      ? await Promise.all([
          db.select().from(documentVersions).where(inArray(documentVersions.documentId, ids)).orderBy(asc(documentVersions.number)),
          db.select().from(documentComments).where(inArray(documentComments.documentId, ids)).orderBy(asc(documentComments.id)),
        ])
      : [[], []];
    const index = [];
    for (const d of list) {
      const folder = `${d.id}`;
      archive.text(`${folder}/${segment(d.title, 'document')}.md`, d.body);
      archive.json(`${folder}/document.json`, {
        ...d,
        versions: versions.filter((v) => v.documentId === d.id).map(({ documentId: _d, ...v }) => v),
        comments: comments.filter((c) => c.documentId === d.id).map(({ documentId: _d, ...c }) => c),
      });
      index.push({ id: d.id, title: d.title, version: d.version, tags: d.tags, archived: d.archived, createdAt: d.createdAt, updatedAt: d.updatedAt });
    }
    archive.json('documents.json', index);
  },
});
