import { sql } from 'drizzle-orm';
import type { FootprintSource } from '../usage/index.ts';
import { documents, documentVersions } from './schema.ts';

/** What documents store, counted to their owner: the current text, and every version kept. */
export const documentsFootprint: FootprintSource[] = [
  {
    name: 'documents',
    from: sql`${documents}`,
    userId: documents.ownerId,
    bytes: sql`octet_length(${documents.title}) + octet_length(${documents.body}) + octet_length(array_to_string(${documents.tags}, ''))`,
  },
  {
    name: 'document_versions',
    from: sql`${documentVersions} join ${documents} on ${documents.id} = ${documentVersions.documentId}`,
    userId: documents.ownerId,
    bytes: sql`octet_length(${documentVersions.title}) + octet_length(${documentVersions.body})`,
  },
];
