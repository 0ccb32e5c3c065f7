import { eq } from 'drizzle-orm';
import type { Announce } from '../../platform/bus/bus.ts';
import type { Db } from '../../platform/db/database.ts';
import { erasureOf } from '../users/index.ts';
import { documents } from './schema.ts';

/**
 * A deleted account's documents, each with its versions, shares, links and comments (foreign keys): a
 * document and its history go together, so no reader ever finds one without the other. What the account
 * wrote in others' documents stays there, without an author (as the foreign keys say). Each is announced
 * deleted as it goes: a reader's collection that indexed it lets go of its passages, as when its owner deletes it.
 */
export const documentsErasure = (db: Db, announce: Announce) =>
  erasureOf(db, 'documents', {
    table: documents,
    where: (userId) => eq(documents.ownerId, userId),
    gone: (ids, userId) => ids.forEach((documentId) => announce('document.deleted', { userId, documentId })),
  });
