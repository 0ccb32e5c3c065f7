import { asc, eq, inArray } from 'drizzle-orm';
import type { Db } from '../../platform/db/database.ts';
import { segment, type ExportSource } from '../export/index.ts';
import { documentComments, documents, documentVersions } from './schema.ts';

/** The documents the user owns: each as Markdown, and as JSON with every version and comment. */
export const documentsExport = (db: Db): ExportSource => ({
  name: 'documents',
  async write(userId, archive) {
    const list = await db.select().from(documents).where(eq(documents.ownerId, userId)).orderBy(asc(documents.createdAt), asc(documents.id));
    // The owner's documents as a subquery, not a list of ids (a list is one parameter each: PostgreSQL takes at most 65,535).
    const owned = db.select({ id: documents.id }).from(documents).where(eq(documents.ownerId, userId));
    const [versions, comments] = list.length
      ? await Promise.all([
          db.select().from(documentVersions).where(inArray(documentVersions.documentId, owned)).orderBy(asc(documentVersions.number)),
          db.select().from(documentComments).where(inArray(documentComments.documentId, owned)).orderBy(asc(documentComments.id)),
        ])
      : [[], []];
    // Grouped once: a filter per document was documents × versions.
    const versionsOf = Map.groupBy(versions, (v) => v.documentId);
    const commentsOf = Map.groupBy(comments, (c) => c.documentId);
    const index = [];
    for (const d of list) {
      const folder = `${d.id}`;
      archive.text(`${folder}/${segment(d.title, 'document')}.md`, d.body);
      archive.json(`${folder}/document.json`, {
        ...d,
        versions: (versionsOf.get(d.id) ?? []).map(({ documentId: _d, ...v }) => v),
        comments: (commentsOf.get(d.id) ?? []).map(({ documentId: _d, ...c }) => c),
      });
      index.push({ id: d.id, title: d.title, version: d.version, tags: d.tags, archived: d.archived, createdAt: d.createdAt, updatedAt: d.updatedAt });
    }
    archive.json('documents.json', index);
  },
});
