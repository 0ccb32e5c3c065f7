import { asc, eq, getTableColumns, inArray } from 'drizzle-orm';
import type { Db } from '../../platform/db/database.ts';
import { inBatches, segment, type ExportSource } from '../export/index.ts';
import { documentComments, documents, documentVersions } from './schema.ts';

/**
 * The documents the user owns: each as Markdown, and as JSON with every version and comment. Bodies,
 * versions and comments are read `batch` documents at a time, as the zip reaches them: never every
 * version of every document at once.
 */
export const documentsExport = (db: Db, opts: { batch?: number } = {}): ExportSource => ({
  name: 'documents',
  async write(userId, archive) {
    const { body: _body, ...listed } = getTableColumns(documents);
    const list = await db.select(listed).from(documents).where(eq(documents.ownerId, userId)).orderBy(asc(documents.createdAt), asc(documents.id));
    const partsOf = inBatches(list, opts.batch ?? 100, async (batch) => {
      const ids = batch.map((d) => d.id);
      const [bodies, versions, comments] = await Promise.all([
        db.select({ id: documents.id, body: documents.body }).from(documents).where(inArray(documents.id, ids)),
        db.select().from(documentVersions).where(inArray(documentVersions.documentId, ids)).orderBy(asc(documentVersions.number)),
        db.select().from(documentComments).where(inArray(documentComments.documentId, ids)).orderBy(asc(documentComments.id)),
      ]);
      return {
        bodies: new Map(bodies.map((b) => [b.id, b.body])),
        versions: Map.groupBy(versions, (v) => v.documentId),
        comments: Map.groupBy(comments, (c) => c.documentId),
      };
    });
    const index = [];
    for (const [at, d] of list.entries()) {
      const folder = `${d.id}`;
      // A document deleted since the list was read has no body left: an empty file, as its versions and comments are.
      archive.later(`${folder}/${segment(d.title, 'document')}.md`, async () => (await partsOf(at)).bodies.get(d.id) ?? '', { text: true });
      archive.later(`${folder}/document.json`, async () => {
        const parts = await partsOf(at);
        return {
          ...d,
          body: parts.bodies.get(d.id) ?? '',
          versions: (parts.versions.get(d.id) ?? []).map(({ documentId: _d, ...v }) => v),
          comments: (parts.comments.get(d.id) ?? []).map(({ documentId: _d, ...c }) => c),
        };
      });
      index.push({ id: d.id, title: d.title, version: d.version, tags: d.tags, archived: d.archived, createdAt: d.createdAt, updatedAt: d.updatedAt });
    }
    archive.json('documents.json', index);
  },
});
