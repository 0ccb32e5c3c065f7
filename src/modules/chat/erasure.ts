import { desc, eq } from 'drizzle-orm';
import type { Db } from '../../platform/db/database.ts';
import { erasureOf } from '../users/index.ts';
import { conversations, conversationShares, messages } from './schema.ts';

/** A deleted account's share links (they point at its messages), its messages, newest first (a reply before what it answers), then its conversations. */
export const chatErasure = (db: Db) =>
  erasureOf(
    db,
    'chat',
    { table: conversationShares, where: (userId) => eq(conversationShares.userId, userId) },
    { table: messages, where: (userId) => eq(messages.userId, userId), order: [desc(messages.createdAt), desc(messages.id)] },
    { table: conversations, where: (userId) => eq(conversations.userId, userId) },
  );
