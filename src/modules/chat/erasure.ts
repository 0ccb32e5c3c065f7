import { desc, eq } from 'drizzle-orm';
import type { Db } from '../../platform/db/database.ts';
import { erasureOf } from '../users/index.ts';
import { conversations, messages } from './schema.ts';

/** A deleted account's messages, newest first (a reply before what it answers), then its conversations. */
export const chatErasure = (db: Db) =>
  erasureOf(
    db,
    'chat',
    { table: messages, where: (userId) => eq(messages.userId, userId), order: [desc(messages.createdAt), desc(messages.id)] },
    { table: conversations, where: (userId) => eq(conversations.userId, userId) },
  );
