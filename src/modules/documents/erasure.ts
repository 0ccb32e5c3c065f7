import { eq } from 'drizzle-orm';
import type { Db } from '../../platform/db/database.ts';
import { erasureOf } from '../users/index.ts';
import { documents } from './schema.ts';

/**
 * A deleted account's documents, each with its versions, shares, links and comments (foreign keys): a
 * document and its history go together, so no reader ever finds one without the other. What the account
 * wrote in others' documents stays there, without an author (as the foreign keys say).
 */
export const documentsErasure = (db: Db) => erasureOf(db, 'documents', { table: documents, where: (userId) => eq(documents.ownerId, userId) });
